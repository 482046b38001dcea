"""The best CPU peak FLOP/s seen on this machine, kept across runs so that two runs' MFUs compare.

A peak measured while the machine is busy comes out low (one run divided by 51 GFLOP/s, the next by 116, and
the same stage showed 39 % and 16 % MFU). A busy moment can only make a timing slower, so the highest peak
ever measured here for the same CPU, thread count, torch version and dtype is the honest one: every run
measures (tfctl.run.peak), then divides by the best of its own measurement and this cache, and raises the
cache when it measured higher.

The cache is one small JSON file: $TFCTL_PEAK_CACHE, else $XDG_CACHE_HOME/tfctl/cpu_peaks.json, else
~/.cache/tfctl/cpu_peaks.json. It is only ever a hint: unreadable, it is ignored and rewritten.
"""

import json
import os
import platform
from pathlib import Path

from tfctl.files import atomic_write_json


def cache_path() -> Path:
    if os.environ.get("TFCTL_PEAK_CACHE"):
        return Path(os.environ["TFCTL_PEAK_CACHE"]).expanduser()
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root).expanduser() / "tfctl" / "cpu_peaks.json"


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def machine_key(threads: int, torch_version: str, dtype: str = "fp32") -> str:
    return f"{cpu_model()} | {threads} thread(s) | torch {torch_version} | {dtype}"


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def best_seen(key: str) -> dict | None:
    """The cached record for `key` ({"flops", "source"}), or None."""
    record = _load(cache_path()).get(key)
    if isinstance(record, dict) and isinstance(record.get("flops"), int | float) and record["flops"] > 0:
        return {"flops": float(record["flops"]), "source": str(record.get("source", ""))}
    return None


def remember(key: str, record: dict) -> bool:
    """Keep `record` when it beats the cached peak for `key`; True when it did. A cache that cannot be
    written (read-only home) is left alone: the run's own state.json still holds its peak."""
    cached = best_seen(key)
    if cached is not None and cached["flops"] >= record["flops"]:
        return False
    path = cache_path()
    data = _load(path)
    data[key] = {"flops": float(record["flops"]), "source": record["source"]}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, data)
    except OSError:
        return False
    return True


def best_of(key: str, measured: dict) -> dict:
    """The peak to divide by: `measured` when it is the best seen on this machine (then cached), else the
    cached one, saying where it came from and what was measured now."""
    cached = best_seen(key)
    if cached is None or measured["flops"] > cached["flops"]:
        remember(key, measured)
        return measured
    return {
        "flops": cached["flops"],
        "source": f"the best peak seen on this machine ({cache_path()}): {cached['source']}; "
        f"measured now {measured['flops']:.4g} FLOP/s",
    }
