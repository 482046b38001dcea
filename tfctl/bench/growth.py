"""How long growth takes and how much memory it needs, each growth in a fresh process (peak RSS is the
process's own high-water mark, so nothing from setting up the source model counts), against the time of
writing the same number of bytes with fsync to the same disk in the same run (the floor for any growth
that writes its output).

    python -m tfctl.bench.growth incremental-124m incremental-1.4b
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
from tfctl.model_dir import save_model_dir
config = preset(sys.argv[1])
torch.manual_seed(0)
save_model_dir(build_model(config).state_dict(), config, sys.argv[2])
"""

_GROW = """
import json, resource, sys, time
start = time.perf_counter()
from tfctl.growth import grow_model_dir
imported = time.perf_counter()
report = grow_model_dir(sys.argv[1], sys.argv[2], sys.argv[3], init=sys.argv[4])
done = time.perf_counter()
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({**report.to_dict(), "import_seconds": imported - start, "total_seconds": done - imported,
                  "peak_rss_bytes": usage.ru_maxrss * 1024, "minor_page_faults": usage.ru_minflt,
                  "major_page_faults": usage.ru_majflt, "cpu_user_seconds": usage.ru_utime,
                  "cpu_system_seconds": usage.ru_stime}))
"""
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


def benchmark_growth(
    source_preset: str = "incremental-124m",
    target_preset: str = "incremental-1.4b",
    init: str = "preserve",
    workdir: str | Path | None = None,
) -> dict:
    """Grow a randomly initialised `source_preset` model directory to `target_preset` and measure it.

    Returns the growth report (with its read / grow / write / verify split) plus `total_seconds` (imports
    excluded), `peak_rss_bytes` of the growing process, `grown_fp32_bytes`, `rss_over_grown` (their ratio),
    `raw_write_seconds` (the mean of writing the grown file's size with fsync just before and just after)
    and `over_raw_write` (total over raw write).
    """
    from tfctl.model.presets import preset
    from tfctl.model.sizes import count_params

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        source, out = Path(tmp) / "source", Path(tmp) / "grown"
        subprocess.run([sys.executable, "-c", _MAKE_SOURCE, source_preset, str(source)], check=True)
        grown_bytes = 4 * count_params(preset(target_preset))
        raw_before = raw_write_seconds(Path(tmp) / "raw", grown_bytes)
        wall = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", _GROW, str(source), str(out), target_preset, init],
            check=True,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - wall
        file_bytes = (out / "model.safetensors").stat().st_size
        shutil.rmtree(out)
        raw_after = raw_write_seconds(Path(tmp) / "raw", file_bytes)
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    raw = (raw_before + raw_after) / 2
    return {
        "source": source_preset,
        "target": target_preset,
        **measured,
        "process_seconds": wall,
        "grown_fp32_bytes": grown_bytes,
        "file_bytes": file_bytes,
        "rss_over_grown": measured["peak_rss_bytes"] / grown_bytes,
        "raw_write_seconds": raw,
        "raw_write_seconds_before_after": [raw_before, raw_after],
        "over_raw_write": measured["total_seconds"] / raw,
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    print(json.dumps(benchmark_growth(*args), indent=2))
