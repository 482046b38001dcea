"""Peak FLOP/s per device and model FLOPs utilisation (MFU), nanoGPT/PaLM style.

GPU peaks are dense bf16 tensor-core numbers from the vendor sheets. A CPU has no sheet: its peak is measured
with fp32 matmuls at the thread count a rank uses, as the best of several short timings — on a shared
machine a busy moment can only make a timing slower, so the fastest is the honest peak. `tfctl train`
measures it once per run and records it in state.json, so every MFU of the run and of its baselines uses the
same peak (the orchestrator passes it as `spec.peak_flops`, which also carries a configured
`train.peak_flops`); a worker started on its own without one measures it at start.
"""

import time

import torch

GPU_PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "A10G": 125e12, "L4": 121e12, "V100": 125e12}


def gpu_peak_flops(name: str) -> float | None:
    for key, peak in GPU_PEAK_BF16.items():
        if key in name.upper():
            return peak
    return None


def measure_cpu_peak(
    threads: int | None = None, size: int = 1024, timings: int = 5, seconds: float = 0.1
) -> float:
    """fp32 matmul FLOP/s on `threads` threads (default: torch's current count): the best of `timings`
    timings of about `seconds` each, after a warm-up."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b  # warm-up
        best = 0.0
        for _ in range(timings):
            runs, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds or runs == 0:
                a @ b
                runs += 1
            best = max(best, 2 * size**3 * runs / elapsed)
        return best
    finally:
        torch.set_num_threads(previous)


def peak_flops_per_device(configured: float | None, device_type: str) -> float:
    if configured:
        return float(configured)
    if device_type == "cuda":
        return gpu_peak_flops(torch.cuda.get_device_name()) or GPU_PEAK_BF16["A100"]
    return measure_cpu_peak()


def mfu(flops_per_token: float, tokens_per_second: float, peak_per_device: float, world_size: int) -> float:
    return flops_per_token * tokens_per_second / (peak_per_device * world_size)
