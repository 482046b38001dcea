"""How long `tfctl grow` takes and how much memory it needs, in a fresh process (peak RSS is the process's
own high-water mark, so nothing from setting up the source model counts), against the best of three raw
writes of the same number of bytes with fsync to the same disk in the same run (the floor for any growth
that writes its output through the page cache; `dd bs=64M conv=fsync` does the same), and against the best
of three writes of the same bytes with O_DIRECT (`dd bs=64M oflag=direct conv=fsync`: the disk's own floor;
`tfctl grow` writes that way, and leaves the zero runs as holes).

    python -m tfctl.bench.growth incremental-124m incremental-1.4b   # 5.6 GB written 4 times: an idle machine
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_MAKE_SOURCE = """
import sys, torch
from tfctl.model import build_model
from tfctl.model.presets import preset
from tfctl.model_dir.weights import save_model_dir
config = preset(sys.argv[1])
torch.manual_seed(0)
save_model_dir(build_model(config).state_dict(), config, sys.argv[2])
"""

_GROW = """
import json, resource, sys, time
start = time.perf_counter()
from tfctl.cli import main
try:
    main(sys.argv[1:])
finally:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"in_process_seconds": time.perf_counter() - start, "peak_rss_bytes": usage.ru_maxrss * 1024,
                      "minor_page_faults": usage.ru_minflt, "major_page_faults": usage.ru_majflt,
                      "cpu_user_seconds": usage.ru_utime, "cpu_system_seconds": usage.ru_stime}))
"""  # `tfctl grow ... --json` as the console script runs it, its resource usage printed after it
RAW_WRITES = 3  # the raw write is the best of this many: the disk is shared, a busy moment only slows it
CHUNK = 64 * 2**20


def raw_write_seconds(path: Path, num_bytes: int) -> float:
    """Seconds to write `num_bytes` to a new file at `path` from one reused buffer, fsync included."""
    chunk = memoryview(os.urandom(CHUNK))
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        left = num_bytes
        while left:
            left -= os.write(fd, chunk[: min(left, CHUNK)])
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - start
    path.unlink()
    return seconds


def raw_direct_write_seconds(path: Path, num_bytes: int) -> float:
    """`raw_write_seconds` with O_DIRECT, from one aligned buffer (through the page cache where the file
    system refuses O_DIRECT); the last partial chunk is padded to the block size, then the file cut."""
    import torch

    from tfctl.model_dir.direct_io import ALIGN, aligned_empty, open_file

    buffer = aligned_empty(CHUNK)
    buffer.copy_(torch.frombuffer(bytearray(os.urandom(CHUNK)), dtype=torch.uint8))
    chunk = memoryview(buffer.numpy())
    start = time.perf_counter()
    fd, _ = open_file(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, direct=True)
    try:
        left = num_bytes
        while left:
            count = min(left, CHUNK)
            written = os.write(fd, chunk[: -(-count // ALIGN) * ALIGN])
            left -= min(written, count)
        os.ftruncate(fd, num_bytes)
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - start
    path.unlink()
    return seconds


def benchmark_growth(
    source_preset: str = "incremental-124m",
    target_preset: str = "incremental-1.4b",
    init: str = "preserve",
    workdir: str | Path | None = None,
) -> dict:
    """Grow a randomly initialised `source_preset` model directory to `target_preset` with `tfctl grow` in a
    fresh process, and measure it against the best of RAW_WRITES raw writes of the same bytes (one before
    the growth, the rest after it), each fsynced like `dd conv=fsync`.

    Returns the growth report (with its read / grow / write / verify split), `process_seconds` (the whole
    `tfctl grow` process: interpreter, imports, growth, exit), `peak_rss_bytes` of that process,
    `grown_fp32_bytes`, `rss_over_grown` (their ratio), `file_bytes` and `file_disk_bytes` (what the file
    holds on the disk, holes left out), `raw_write_seconds` (the best raw write; every one in
    `raw_write_seconds_all`), `over_raw_write` (process seconds over the best raw write), and the same three
    for the writes with O_DIRECT (`raw_direct_write_seconds`...), each taken right after a raw write.
    """
    from tfctl.model.presets import preset
    from tfctl.model.sizes import count_params

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        source, out = Path(tmp) / "source", Path(tmp) / "grown"
        subprocess.run([sys.executable, "-c", _MAKE_SOURCE, source_preset, str(source)], check=True)
        grown_bytes = 4 * count_params(preset(target_preset))
        raw = [raw_write_seconds(Path(tmp) / "raw", grown_bytes)]
        direct = [raw_direct_write_seconds(Path(tmp) / "raw", grown_bytes)]
        command = ["grow", str(source), "--to", target_preset, "--init", init, "-o", str(out), "--json"]
        wall = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", _GROW, *command],
            check=True,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - wall
        file_bytes = (out / "model.safetensors").stat().st_size
        disk_bytes = (out / "model.safetensors").stat().st_blocks * 512  # less: the holes
        shutil.rmtree(out)
        for _ in range(RAW_WRITES - 1):
            raw.append(raw_write_seconds(Path(tmp) / "raw", file_bytes))
            direct.append(raw_direct_write_seconds(Path(tmp) / "raw", file_bytes))
    *_, report, usage = (json.loads(line) for line in result.stdout.strip().splitlines()[-2:])
    return {
        "source": source_preset,
        "target": target_preset,
        **report,
        **usage,
        "total_seconds": report["seconds"],
        "process_seconds": wall,
        "grown_fp32_bytes": grown_bytes,
        "file_bytes": file_bytes,
        "file_disk_bytes": disk_bytes,
        "rss_over_grown": usage["peak_rss_bytes"] / grown_bytes,
        "raw_write_seconds": min(raw),
        "raw_write_seconds_all": raw,
        "over_raw_write": wall / min(raw),
        "raw_direct_write_seconds": min(direct),
        "raw_direct_write_seconds_all": direct,
        "over_raw_direct_write": wall / min(direct),
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    print(json.dumps(benchmark_growth(*args), indent=2))
