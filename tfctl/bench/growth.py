"""How long growth takes and how much memory it needs, each growth in a fresh process (peak RSS is the
process's own high-water mark, so nothing from setting up the source model counts).

    python -m tfctl.bench.growth incremental-124m incremental-1.4b
"""

import json
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
print(json.dumps({**report.to_dict(), "import_seconds": imported - start, "total_seconds": done - imported,
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def benchmark_growth(
    source_preset: str = "incremental-124m",
    target_preset: str = "incremental-1.4b",
    init: str = "preserve",
    workdir: str | Path | None = None,
) -> dict:
    """Grow a randomly initialised `source_preset` model directory to `target_preset` and measure it.

    Returns the growth report plus `total_seconds` (load, grow, verify and write, imports excluded),
    `peak_rss_bytes` of the growing process, `grown_fp32_bytes` and `rss_over_grown` (their ratio).
    """
    from tfctl.model.presets import preset
    from tfctl.model.sizes import count_params

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        source, out = Path(tmp) / "source", Path(tmp) / "grown"
        subprocess.run([sys.executable, "-c", _MAKE_SOURCE, source_preset, str(source)], check=True)
        wall = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", _GROW, str(source), str(out), target_preset, init],
            check=True,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - wall
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    grown_bytes = 4 * count_params(preset(target_preset))
    return {
        "source": source_preset,
        "target": target_preset,
        **measured,
        "process_seconds": wall,
        "grown_fp32_bytes": grown_bytes,
        "rss_over_grown": measured["peak_rss_bytes"] / grown_bytes,
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    print(json.dumps(benchmark_growth(*args), indent=2))
