"""One CPU peak FLOP/s per run, for every MFU of its stages and of its baselines (tfctl.worker.throughput)."""

from tfctl.launch import build_env
from tfctl.recipe.schema import LaunchSection
from tfctl.run.state import RunState


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def run_cpu_peak(state: RunState, launch: LaunchSection, display) -> float | None:
    """Measured once per thread count a rank uses (best of several short timings), kept in state.json under
    `cpu_peak_flops`; None on GPUs, whose peaks the worker looks up."""
    from tfctl.worker.throughput import measure_cpu_peak

    if _has_gpu():
        return None
    threads = build_env(launch, gpu=False).get("OMP_NUM_THREADS")
    key = f"threads={threads or 'default'}"
    peaks = state.data.setdefault("cpu_peak_flops", {})
    if key not in peaks:
        with display.activity("measuring the CPU's peak FLOP/s for MFU (once per run)"):
            peaks[key] = measure_cpu_peak(int(threads) if threads else None)
        state.save()
    return peaks[key]
