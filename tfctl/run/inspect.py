"""Using what a run produced: find a run's latest model, evaluate a model directory, sample from it."""

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from tfctl.data import eval_batches, load_prepared, load_tokenizer
from tfctl.data.tokenizer import encode_text_file
from tfctl.errors import UserError
from tfctl.model_dir import TOKENIZER, is_model_dir, load_model
from tfctl.run.layout import RunDir
from tfctl.run.state import DONE, RunState
from tfctl.worker.evaluate import perplexity
from tfctl.worker.spec import StageSpec


@dataclass
class ModelTarget:
    """A model directory, and (when it came from a run) the data and eval settings it was trained with."""

    model_dir: Path
    data_dir: Path | None = None
    eval_batches: int = 8
    eval_batch_size: int = 8


def latest_model(run_dir: Path) -> tuple[str, Path]:
    """(stage, final model dir) of the last finished stage of a run directory."""
    dirs = RunDir(run_dir)
    state = RunState.load(dirs.state, run_dir.name)
    finished = [name for name, entry in state.data["stages"].items() if entry.get("status") == DONE]
    if not finished:
        raise UserError(f"{run_dir}: no finished stage yet (run `tfctl train` first)")
    return finished[-1], dirs.final(finished[-1])


def resolve_target(path: str | Path) -> ModelTarget:
    """A model directory as is, or a run directory's latest export with that stage's eval settings."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such model or run directory")
    if RunDir(path).is_run():
        stage, model_dir = latest_model(path)
        spec = StageSpec.load(RunDir(path).spec(stage))
        return ModelTarget(
            model_dir, Path(spec.data_dir), spec.train.eval_batches, spec.train.eval_batch_size
        )
    if is_model_dir(path):
        export = path / "export.json"
        target = ModelTarget(path)
        if export.is_file():
            info = json.loads(export.read_text())
            if info.get("data_dir"):
                target.data_dir = Path(info["data_dir"])
            target.eval_batches = info.get("eval_batches", target.eval_batches)
            target.eval_batch_size = info.get("eval_batch_size", target.eval_batch_size)
        return target
    raise UserError(
        f"{path}: neither a model directory (model.safetensors + config.json) nor a run directory "
        "(state.json)"
    )


def text_windows(tokens, seq_len: int, batch_size: int) -> list:
    """Every full, non-overlapping window of a token stream, batched: the whole text is scored."""

    tokens = torch.as_tensor(tokens.astype("int64"))
    count = (len(tokens) - 1) // seq_len
    if count == 0:
        raise UserError(f"the text has {len(tokens)} tokens, fewer than one window of {seq_len + 1}")
    x = tokens[: count * seq_len].view(count, seq_len)
    y = tokens[1 : count * seq_len + 1].view(count, seq_len)
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, count, batch_size)]


def evaluate_model(
    path: str | Path,
    text: Path | None = None,
    data: Path | None = None,
    batches: int | None = None,
    batch_size: int | None = None,
) -> dict:
    """Mean next-token loss and perplexity of a model on a text file, a prepared dataset's val split, or
    (by default) the val batches its run evaluated on — so it reproduces the run's final val loss."""

    target = resolve_target(path)
    model, config = load_model(target.model_dir)
    model.eval()
    batch_size = batch_size or target.eval_batch_size
    if text is not None:
        if not (target.model_dir / TOKENIZER).is_file():
            raise UserError(f"{target.model_dir}: has no {TOKENIZER} to tokenize --text with")
        if not Path(text).is_file():
            raise UserError(f"{text}: no such text file")
        tokens = encode_text_file(load_tokenizer(target.model_dir), text)
        windows, source = text_windows(tokens, config.seq_len, batch_size), str(text)
    else:
        data_dir = Path(data) if data else target.data_dir
        if data_dir is None:
            raise UserError(f"{path}: no dataset recorded for this model; pass --text FILE or --data DIR")
        prepared = load_prepared(data_dir)
        windows = eval_batches(
            prepared.tokens("val"), config.seq_len, batch_size, batches or target.eval_batches
        )
        source = f"{data_dir} (val)"
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in windows:
            _, loss = model(torch.as_tensor(x), torch.as_tensor(y))
            total += loss.double().item() * y.numel()
            count += y.numel()
    loss = total / count
    return {
        "model": str(target.model_dir),
        "data": source,
        "loss": loss,
        "ppl": perplexity(loss),
        "tokens": count,
    }


def generate(
    path: str | Path,
    prompt: str,
    max_new_tokens: int = 100,
    temperature: float = 0.8,
    top_k: int | None = 50,
    seed: int = 0,
) -> str:

    target = resolve_target(path)
    if not (target.model_dir / TOKENIZER).is_file():
        raise UserError(f"{target.model_dir}: has no {TOKENIZER}; cannot encode a prompt")
    tokenizer = load_tokenizer(target.model_dir)
    model, _ = load_model(target.model_dir)
    model.eval()
    ids = tokenizer.encode(prompt).ids or [0]
    generator = torch.Generator().manual_seed(seed)
    out = model.generate(
        torch.tensor([ids]), max_new_tokens, temperature=temperature, top_k=top_k, generator=generator
    )
    return tokenizer.decode(out[0].tolist())
