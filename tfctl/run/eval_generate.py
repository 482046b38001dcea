"""Using what a run produced: evaluate a model directory (or a run's latest model), sample from it.
Which model a path means is `targets.py` (no torch), so a wrong one is refused before torch loads."""

import math
import sys
from contextlib import contextmanager
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from tfctl.data import eval_batches, load_prepared, load_tokenizer
from tfctl.data.tokenizer import encode_text_file
from tfctl.errors import UserError
from tfctl.model.loss import perplexity
from tfctl.model_dir.config import TOKENIZER
from tfctl.model_dir.weights import load_model
from tfctl.run.targets import ModelTarget, generation_target, resolve_target


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
    path: str | Path | ModelTarget,
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
    path: str | Path | ModelTarget,
    prompt: str,
    max_new_tokens: int = 100,
    temperature: float = 0.8,
    top_k: int | None = 50,
    seed: int = 0,
) -> str:
    """A sampled continuation of `prompt`; a long one shows a progress bar on a terminal (stderr)."""
    target = generation_target(path, max_new_tokens, seed, temperature)
    tokenizer = load_tokenizer(target.model_dir)
    model, _ = load_model(target.model_dir)
    model.eval()
    ids = torch.tensor([tokenizer.encode(prompt).ids or [0]])
    generator = torch.Generator().manual_seed(seed)
    cache = model.new_cache()  # each step runs the new token only (tfctl.model.layers.KVCache)
    done = 0
    with torch.no_grad(), token_progress(max_new_tokens) as advance:
        while done < max_new_tokens:  # in chunks: the same samples as one call, with progress between
            chunk = min(GENERATE_CHUNK, max_new_tokens - done)
            try:
                ids = model.generate(
                    ids, chunk, temperature=temperature, top_k=top_k, generator=generator, cache=cache
                )
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
