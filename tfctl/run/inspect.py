"""Using what a run produced: find a run's latest model, evaluate a model directory, sample from it."""

import json
import math
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from tfctl.data import eval_batches, load_prepared, load_tokenizer
from tfctl.data.tokenizer import encode_text_file
from tfctl.errors import UserError
from tfctl.model_dir import TOKENIZER, is_model_dir, load_model
from tfctl.run.layout import RunDir
from tfctl.run.state import DONE, RunState
from tfctl.worker.evaluate import perplexity
from tfctl.worker.spec import StageSpec

MAX_NEW_TOKENS = 20_000  # beyond this, sampling on a CPU takes hours: a typo


@dataclass
class ModelTarget:
    """A model directory, and (when it came from a run) the data and eval settings it was trained with."""

    model_dir: Path
    data_dir: Path | None = None
    eval_batches: int = 8
    eval_batch_size: int = 8


def read_export_info(model_dir: Path) -> dict:
    """A model directory's export.json (provenance, eval settings): {} when missing; damaged is a UserError."""
    export = model_dir / "export.json"
    if not export.is_file():
        return {}
    try:
        info = json.loads(export.read_bytes())
    except (OSError, ValueError) as error:
        raise UserError(f"{export}: unreadable ({error}); delete it to use the model without it") from None
    if not isinstance(info, dict):
        raise UserError(f"{export}: not a JSON object; delete it to use the model without it")
    return info


def latest_model(run_dir: Path) -> tuple[str, Path]:
    """(stage, final model dir) of the last finished stage of a run directory."""
    dirs = RunDir(run_dir)
    state = RunState.load(dirs.state, run_dir.name)
    finished = [name for name, entry in state.data["stages"].items() if entry.get("status") == DONE]
    if not finished:
        raise UserError(f"{run_dir}: no finished stage yet (run `tfctl train` first)")
    return finished[-1], dirs.final(finished[-1])


def _from_spec(model_dir: Path, spec_path: Path) -> ModelTarget:
    spec = StageSpec.load(spec_path)
    return ModelTarget(model_dir, Path(spec.data_dir), spec.train.eval_batches, spec.train.eval_batch_size)


def resolve_target(path: str | Path) -> ModelTarget:
    """A model directory as is, or a run directory's latest export with that stage's eval settings. A model
    directory inside a run (RUN/stages/<stage>/final or init) gets its stage's data and eval settings."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such model or run directory")
    if RunDir(path).is_run():
        stage, model_dir = latest_model(path)
        return _from_spec(model_dir, RunDir(path).spec(stage))
    if is_model_dir(path):
        info = read_export_info(path)
        target = ModelTarget(path)
        if (path.parent / "spec.json").is_file():  # a stage's final/ or init/
            target = _from_spec(path, path.parent / "spec.json")
        if isinstance(info.get("data_dir"), str) and info["data_dir"]:
            target.data_dir = Path(info["data_dir"])
        for key in ("eval_batches", "eval_batch_size"):
            value = info.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                setattr(target, key, value)
        return target
    raise UserError(
        f"{path}: neither a model directory (model.safetensors + config.json) nor a run directory "
        "(state.json)"
    )


def text_windows(tokens, seq_len: int, batch_size: int) -> list:
    """Every full, non-overlapping window of a token stream, batched: the whole text is scored."""

    tokens = torch.as_tensor(tokens.astype("int64"))
    if len(tokens) < 2:
        raise UserError(f"the text has {len(tokens)} token(s); scoring needs at least 2")
    seq_len = min(seq_len, len(tokens) - 1)  # a short text is scored as one shorter window
    count = (len(tokens) - 1) // seq_len
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
    if not math.isfinite(loss):
        raise UserError(
            f"{target.model_dir}: the loss on {source} is not finite ({loss}); the weights overflow"
        )
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
    """A sampled continuation of `prompt`; a long one shows a progress bar on a terminal (stderr)."""
    if not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise UserError(f"--max-new-tokens {max_new_tokens}: must be from 1 to {MAX_NEW_TOKENS:,}")
    if not 0 <= seed < 2**63:
        raise UserError(f"--seed {seed}: must be from 0 to 2^63 - 1")
    if not math.isfinite(temperature) or temperature < 0:
        raise UserError(f"--temperature {temperature}: must be a finite number >= 0")
    target = resolve_target(path)
    if not (target.model_dir / TOKENIZER).is_file():
        raise UserError(f"{target.model_dir}: has no {TOKENIZER}; cannot encode a prompt")
    tokenizer = load_tokenizer(target.model_dir)
    model, _ = load_model(target.model_dir)
    model.eval()
    ids = torch.tensor([tokenizer.encode(prompt).ids or [0]])
    generator = torch.Generator().manual_seed(seed)
    done = 0
    with torch.no_grad(), token_progress(max_new_tokens) as advance:
        while done < max_new_tokens:  # in chunks: the same samples as one call, with progress between
            chunk = min(GENERATE_CHUNK, max_new_tokens - done)
            try:
                ids = model.generate(ids, chunk, temperature=temperature, top_k=top_k, generator=generator)
            except RuntimeError as error:
                if "probability tensor" not in str(error):
                    raise
                raise UserError(
                    f"{target.model_dir}: the model's outputs are not finite; cannot sample"
                ) from None
            done += chunk
            advance(chunk)
    return tokenizer.decode(ids[0].tolist())


GENERATE_CHUNK = 32
LONG_GENERATION = 256  # tokens: from here on a terminal shows a progress bar


@contextmanager
def token_progress(total: int):
    """A bar on stderr (stdout is the text) when it is a terminal and the generation is long."""
    if total < LONG_GENERATION or not sys.stderr.isatty():
        yield lambda n: None
        return
    columns = ("generating", BarColumn(), MofNCompleteColumn(), "tokens", TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("generate", total=total)
        yield lambda n: progress.advance(task, n)
