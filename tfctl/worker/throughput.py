"""Peak FLOP/s per device and model FLOPs utilisation (MFU), nanoGPT/PaLM style.

GPU peaks are dense bf16 tensor-core numbers from the vendor sheets. A CPU has no sheet: its peak is measured
with a short fp32 matmul benchmark at the current thread count whenever a stage starts, and the best value
ever seen is kept in ~/.cache/tfctl/cpu_peak.json — on a shared machine a measurement can only come out low,
so the maximum is the honest peak (and MFU is never inflated by one busy moment). `spec.peak_flops`
overrides both.
"""

import json
import os
import platform
import time
from pathlib import Path

import torch

GPU_PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "A10G": 125e12, "L4": 121e12, "V100": 125e12}


def gpu_peak_flops(name: str) -> float | None:
    for key, peak in GPU_PEAK_BF16.items():
        if key in name.upper():
            return peak
    return None


def cpu_peak_flops(cache_dir: Path | None = None, size: int = 1024, seconds: float = 0.3) -> float:
    """The best fp32 matmul FLOP/s this process's thread count has shown, per (cpu, threads)."""
    cache = (
        cache_dir or Path(os.environ.get("TFCTL_CACHE", Path.home() / ".cache" / "tfctl"))
    ) / "cpu_peak.json"
    key = f"{platform.processor() or platform.machine()}|{os.cpu_count()}|threads={torch.get_num_threads()}"
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        runs += 1
    measured = 2 * size**3 * runs / (time.perf_counter() - start)
    peak = max(measured, float(known.get(key, 0.0)))
    if peak == known.get(key):
        return peak
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        known[key] = peak
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=2))
        tmp.replace(cache)
    except OSError:
        pass
    return peak


def peak_flops_per_device(configured: float | None, device_type: str) -> float:
    if configured:
        return float(configured)
    if device_type == "cuda":
        return gpu_peak_flops(torch.cuda.get_device_name()) or GPU_PEAK_BF16["A100"]
    return cpu_peak_flops()


def mfu(flops_per_token: float, tokens_per_second: float, peak_per_device: float, world_size: int) -> float:
    return flops_per_token * tokens_per_second / (peak_per_device * world_size)
