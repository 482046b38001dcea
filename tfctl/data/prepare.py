"""Prepare a dataset: split documents into train/val, tokenize, write flat token files + meta.json.

The result is a directory `train.bin`, `val.bin` (raw uint16/uint32 ids, an EOS after every document),
`tokenizer.json` and `meta.json`. It is named by a hash of the source fingerprint and the settings, built under
a temporary name and renamed when complete, so a directory that exists is whole and a second prepare of the
same data is instant.
"""

import collections
import glob
import hashlib
import json
import multiprocessing
import os
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from tfctl.data.settings import DataSettings
from tfctl.data.sources import Source, resolve_sources
from tfctl.data.tokenizer import (
    TextEncoder,
    eos_id,
    load_tokenizer,
    padded_vocab_size,
    parse_tokenizer_spec,
    token_dtype,
    train_bpe,
)
from tfctl.errors import DataError

FORMAT_VERSION = 1
BATCH_CHARS = 4 << 20  # text handed to the tokenizer per call: big enough to keep all cores busy
WORKER_BATCH_CHARS = 1 << 20  # text per task of a worker process: small enough to spread over the workers
PARALLEL_MIN_BYTES = 16 << 20  # below this a corpus is tokenized in-process (starting workers costs ~1 s)
SPLITS = ("train", "val")


def default_cache_root() -> Path:
    return Path(os.environ.get("TFCTL_CACHE") or Path.home() / ".cache" / "tfctl" / "data").expanduser()


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def source_fingerprint(sources: list[Source]) -> str:
    """Paths, sizes and mtimes of every input: cheap, and changes whenever the text can have changed."""
    return _digest([source.fingerprint() for source in sources])


def cache_key(fingerprint: str, settings: DataSettings, tokenizer_spec: dict) -> str:
    settings_part = {k: v for k, v in asdict(settings).items() if k not in ("source", "tokenizer")}
    return _digest([FORMAT_VERSION, fingerprint, tokenizer_spec, settings_part])[:16]


def val_documents(num_documents: int, val_fraction: float, seed: int) -> set[int]:
    """Indices of the documents held out: a seeded choice, at least one each way when there are two or more."""
    if val_fraction == 0 or num_documents < 2:
        return set()
    num_val = min(max(round(num_documents * val_fraction), 1), num_documents - 1)
    return set(np.random.default_rng(seed).permutation(num_documents)[:num_val].tolist())


def split_documents(
    sources: list[Source], num_documents: int, settings: DataSettings
) -> Iterator[tuple[str, str]]:
    """(split, text) for every document, in source order. A lone document gives its tail to val."""
    held_out = val_documents(num_documents, settings.val_fraction, settings.seed)
    index = 0
    for source in sources:
        for text in source.documents():
            if num_documents == 1 and settings.val_fraction > 0:
                cut = int(len(text) * (1 - settings.val_fraction))
                cut = text.rfind("\n", 0, cut) + 1 or cut
                yield "train", text[:cut]
                yield "val", text[cut:]
            else:
                yield ("val" if index in held_out else "train"), text
            index += 1


@contextmanager
def progress_bar(description: str, total: int | None, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A rich bar on stderr when it is a terminal; otherwise a no-op `advance`."""
    from rich.console import Console

    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield lambda n: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def build_tokenizer(
    spec: dict, train_texts: Callable[[], Iterator[str]], cache_path: Path, progress: bool
) -> Tokenizer:
    """The tokenizer a spec names; a trained BPE is reused from `cache_path` when it exists."""
    if spec["kind"] == "gpt2":
        return load_tokenizer("gpt2")
    if spec["kind"] == "file":
        return load_tokenizer(spec["path"])
    if cache_path.is_file():
        return Tokenizer.from_file(str(cache_path))
    tokenizer = train_bpe(train_texts(), spec["vocab_size"], show_progress=progress)
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    partial = cache_path.with_name(f".{cache_path.name}.{uuid.uuid4().hex}")
    tokenizer.save(str(partial))
    os.replace(partial, cache_path)
    return tokenizer


def text_batches(items: Iterable, text_of: Callable, batch_chars: int = BATCH_CHARS) -> Iterator[list]:
    """Groups of items holding about `batch_chars` characters of text."""
    batch, chars = [], 0
    for item in items:
        batch.append(item)
        chars += len(text_of(item))
        if chars >= batch_chars:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


_worker_encoder: TextEncoder | None = None


def _start_worker(tokenizer_json: str) -> None:
    global _worker_encoder
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread per worker: the workers are the parallelism
    _worker_encoder = TextEncoder(Tokenizer.from_str(tokenizer_json))


def _encode_in_worker(texts: list[str]) -> list[np.ndarray]:
    return _worker_encoder.encode(texts)


def encode_batches(
    batches: Iterable[list[str]], tokenizer: Tokenizer, workers: int
) -> Iterator[list[np.ndarray]]:
    """The ids of each batch of texts, in order. `workers` <= 1: in this process (with the tokenizer's own
    threads); more: that many single-threaded worker processes, at most two batches each in flight, so a
    corpus of any size streams through. Each text is encoded alone: the ids do not depend on the batching."""
    if workers <= 1:
        encoder = TextEncoder(tokenizer)
        for batch in batches:
            yield encoder.encode(batch)
        return
    context = multiprocessing.get_context("spawn")  # not fork: the parent may hold threads (torch, rayon)
    with context.Pool(workers, initializer=_start_worker, initargs=(tokenizer.to_str(),)) as pool:
        pending = collections.deque()
        for batch in batches:
            pending.append(pool.apply_async(_encode_in_worker, (batch,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def write_token_files(
    documents: Iterator[tuple[str, str]], tokenizer: Tokenizer, out: Path, advance, workers: int = 1
) -> dict:
    """Tokenize in batches into out/{train,val}.bin; returns per-split counts of tokens, documents, bytes.
    The files are the same bytes whatever the number of `workers`."""
    dtype, eos = token_dtype(tokenizer.get_vocab_size()), eos_id(tokenizer)
    stats = {split: {"tokens": 0, "documents": 0, "bytes": 0} for split in SPLITS}
    files = {split: (out / f"{split}.bin").open("wb") for split in SPLITS}
    # an empty document would only add a lone EOS
    batches = text_batches(
        ((split, text) for split, text in documents if text.strip()),
        lambda d: d[1],
        WORKER_BATCH_CHARS if workers > 1 else BATCH_CHARS,
    )
    splits: collections.deque = collections.deque()  # the (split, bytes) of each batch handed to the encoder

    def texts():
        for batch in batches:
            splits.append([(split, len(text.encode("utf-8"))) for split, text in batch])
            yield [text for _, text in batch]

    try:
        for encoded in encode_batches(texts(), tokenizer, workers):
            for (split, num_bytes), ids in zip(splits.popleft(), encoded, strict=True):
                files[split].write(ids.tobytes())
                files[split].write(np.array([eos], dtype=dtype).tobytes())
                stats[split]["tokens"] += len(ids) + 1
                stats[split]["documents"] += 1
                stats[split]["bytes"] += num_bytes
                advance(num_bytes)
    finally:
        for f in files.values():
            f.close()
    return stats


def _is_prepared(path: Path, key: str | None = None) -> bool:
    try:
        meta = json.loads((path / "meta.json").read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and (key is None or meta.get("cache_key") == key)


def owned_name(target: Path, kind: str) -> Path:
    """A hidden sibling of `target` for work in progress, named by this host and process."""
    return target.with_name(
        f".{target.name}.{kind}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    )


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_work(target: Path) -> None:
    """Delete what killed preparations of `target` left (`.partial-`/`.old-` siblings of a dead process on
    this host); another host's or a live process's work is left alone."""
    host = socket.gethostname()
    for kind in ("partial", "old"):
        for path in target.parent.glob(f".{glob.escape(target.name)}.{kind}-{glob.escape(host)}-*"):
            pid = path.name.removeprefix(f".{target.name}.{kind}-{host}-").split("-")[0]
            if pid.isdigit() and not is_alive(int(pid)) and path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)


def _publish(partial: Path, target: Path, key: str) -> None:
    """Rename the finished directory into place, replacing an older preparation at the same path."""
    old = None
    if target.exists():
        old = owned_name(target, "old")
        target.rename(old)
    try:
        partial.rename(target)
    except OSError:
        if not _is_prepared(target, key):  # lost a race to another process preparing the same data: fine
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def prepare_dataset(
    settings: DataSettings,
    out_dir: str | Path | None = None,
    cache_root: str | Path | None = None,
    progress: bool = True,
    workers: int | None = None,
) -> Path:
    """Prepare (or reuse) the dataset and return its directory: `out_dir`, or `cache_root/<hash>` without one.

    `cache_root` (default $TFCTL_CACHE or ~/.cache/tfctl/data) also keeps trained BPE tokenizers. `workers`
    tokenizer processes (default: one per core for a corpus of PARALLEL_MIN_BYTES or more, else in-process)
    write the same bytes as one.
    """
    sources = resolve_sources(settings.source, settings.text_field)
    tokenizer_spec = parse_tokenizer_spec(settings.tokenizer)
    fingerprint = source_fingerprint(sources)
    key = cache_key(fingerprint, settings, tokenizer_spec)
    cache_root = Path(cache_root).expanduser() if cache_root else default_cache_root()
    target = Path(out_dir).expanduser() if out_dir else cache_root / key
    if _is_prepared(target, key):
        return target
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not _is_prepared(target):
        raise DataError(f"{target}: exists and is not a prepared dataset; choose another output directory")
    source_name = "+".join(source.name for source in sources)
    num_documents = sum(source.count() for source in sources)
    known_bytes = [source.num_bytes() for source in sources]
    if num_documents == 0 or (None not in known_bytes and sum(known_bytes) == 0):
        raise DataError(f"{source_name}: empty corpus (no text)")

    def documents():
        return split_documents(sources, num_documents, settings)

    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_work(target)
    partial = owned_name(target, "partial")
    partial.mkdir()
    try:
        tokenizer_key = _digest(
            [fingerprint, tokenizer_spec, settings.val_fraction, settings.seed, settings.text_field]
        )
        tokenizer = build_tokenizer(
            tokenizer_spec,
            train_texts=lambda: (text for split, text in documents() if split == "train"),
            cache_path=cache_root / "tokenizers" / f"{tokenizer_key[:16]}.json",
            progress=progress and sys.stderr.isatty(),
        )
        tokenizer.save(str(partial / "tokenizer.json"))
        total_bytes = None if None in known_bytes else sum(known_bytes)
        with progress_bar(f"tokenizing {source_name}", total_bytes, progress) as advance:
            if workers is None:
                large = total_bytes is None or total_bytes >= PARALLEL_MIN_BYTES
                workers = (os.cpu_count() or 1) if large else 1
            stats = write_token_files(documents(), tokenizer, partial, advance, workers)
        if stats["train"]["tokens"] == 0:
            raise DataError(f"{source_name}: empty corpus (no text in the training split)")
        vocab_size = tokenizer.get_vocab_size()
        meta = {
            "format_version": FORMAT_VERSION,
            "cache_key": key,
            "source": source_name,
            "source_fingerprint": fingerprint,
            "settings": asdict(settings),
            "tokenizer": {"spec": settings.tokenizer, **tokenizer_spec},
            "vocab_size": vocab_size,
            "padded_vocab_size": padded_vocab_size(vocab_size),
            "eos_id": eos_id(tokenizer),
            "dtype": token_dtype(vocab_size).name,
            "splits": stats,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (partial / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        _publish(partial, target, key)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target
