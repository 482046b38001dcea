"""Tokenization throughput: the encoding step of `tfctl.data.prepare_dataset`, timed alone."""

import os
import time
from pathlib import Path

from tokenizers import Tokenizer

from tfctl.data.prepare import prepare_dataset, text_batches
from tfctl.data.settings import DataSettings
from tfctl.data.sources import resolve_sources
from tfctl.data.tokenizer import TextEncoder


def benchmark_tokenization(
    source: str | list[str] = "shakespeare+sotu",
    tokenizer: str = "bpe:8192",
    cache_root: str | Path | None = None,
) -> dict:
    """Throughput of the tokenization step of `prepare_dataset` (same encoder, same batches), in MB/s of UTF-8.

    The tokenizer comes from a (cached) preparation of the same source, so BPE training is not timed; reading
    the files is not timed either.
    """
    settings = DataSettings(source=source, tokenizer=tokenizer)
    encoder = TextEncoder(
        Tokenizer.from_file(str(prepare_dataset(settings, cache_root=cache_root) / "tokenizer.json"))
    )
    texts = [text for part in resolve_sources(source) for text in part.documents()]
    batches = list(text_batches(texts, lambda text: text))
    start, start_cpu = time.perf_counter(), time.process_time()
    num_tokens = sum(len(ids) for batch in batches for ids in encoder.encode(batch))
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    num_bytes = sum(len(text.encode("utf-8")) for text in texts)
    return {
        "source": source,
        "tokenizer": tokenizer,
        "bytes": num_bytes,
        "tokens": num_tokens,
        "seconds": round(seconds, 3),
        "mb_per_s": round(num_bytes / seconds / 1e6, 2),
        "cpu_seconds": round(
            cpu_seconds, 3
        ),  # all threads: on a shared machine, MB/s per core = bytes / this
        "cpu_count": os.cpu_count(),
    }
