"""Generation speed with and without the KV cache: tokens/s for N new tokens, one sequence, greedy.

    python -m tfctl.bench.generation runs/tiny                 # the demo's model (a run, or a model dir)
    python -m tfctl.bench.generation incremental-124m          # a preset's shape, random weights
    python -m tfctl.bench.generation runs/tiny --new-tokens 256 --prompt-tokens 16 --repeats 3
    python -m tfctl.bench.generation hf/tiny --hf             # the exported package, through generate()

Prints one line per path ("uncached": every step runs the last seq_len tokens again; "cached": each step runs
the new token, tfctl.model.layers.KVCache) with the best of `repeats` timings, their ratio, and whether both
paths produced the same tokens (they must within the context window). Timings need an idle machine.
"""

import argparse
import time
from pathlib import Path

import torch

from tfctl.model import build_model
from tfctl.model.presets import preset
from tfctl.model_dir.weights import load_model
from tfctl.run.targets import model_dir_of


def load(target: str):
    """A model from a run directory or model directory, else a preset's shape with random weights."""
    if Path(target).exists():
        model, _ = load_model(model_dir_of(Path(target)))
        return model
    torch.manual_seed(0)
    return build_model(preset(target))


class HFModel:
    """An exported package (`tfctl export --hf`) behind the same two calls, through transformers' generate()."""

    def __init__(self, directory: str):
        from transformers import AutoModelForCausalLM

        self.model = AutoModelForCausalLM.from_pretrained(directory, trust_remote_code=True).eval()
        hf = self.model.config
        self.config = argparse.Namespace(vocab_size=hf.vocab_size, seq_len=hf.max_position_embeddings)

    def get_num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters()) - self.model.lm_head.weight.numel()

    def eval(self):
        return self

    def generate(self, prompt, new_tokens, cached):
        options = dict(
            max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, use_cache=cached
        )
        return self.model.generate(prompt, **options)


def tokens_per_second(model, prompt: torch.Tensor, new_tokens: int, cached: bool, repeats: int):
    """(best tokens/s over `repeats`, the generated ids)."""
    best, out = 0.0, None
    for _ in range(repeats):
        started = time.perf_counter()
        with torch.no_grad():
            if isinstance(model, HFModel):
                out = model.generate(prompt, new_tokens, cached)
            else:
                out = model.generate(prompt, new_tokens, top_k=1, cache=model.new_cache() if cached else None)
        best = max(best, new_tokens / (time.perf_counter() - started))
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "model", help="a run directory, a model directory or a preset name (incremental-124m)"
    )
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--prompt-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hf", action="store_true", help="MODEL is a `tfctl export --hf` package")
    args = parser.parse_args()
    model = HFModel(args.model) if args.hf else load(args.model).eval()
    config = model.config
    prompt = torch.randint(
        0, config.vocab_size, (1, args.prompt_tokens), generator=torch.Generator().manual_seed(0)
    )
    print(
        f"{args.model}: {model.get_num_params() / 1e6:.1f}M params, seq_len {config.seq_len}, "
        f"{args.new_tokens} new tokens after {args.prompt_tokens}, {torch.get_num_threads()} thread(s), "
        f"best of {args.repeats}"
    )
    uncached, plain = tokens_per_second(model, prompt, args.new_tokens, False, args.repeats)
    cached, fast = tokens_per_second(model, prompt, args.new_tokens, True, args.repeats)
    window = config.seq_len - args.prompt_tokens
    same = torch.equal(plain[:, : args.prompt_tokens + window], fast[:, : args.prompt_tokens + window])
    print(f"  uncached  {uncached:10.1f} tokens/s")
    print(f"  cached    {cached:10.1f} tokens/s   ({cached / uncached:.1f}x)")
    print(f"  same tokens within the context window: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
