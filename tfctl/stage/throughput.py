"""Peak FLOP/s per device and model FLOPs utilisation (MFU), nanoGPT/PaLM style.

GPU peaks are dense bf16 tensor-core numbers from the vendor sheets. A CPU has no sheet: its peak is measured
with fp32 matmuls at the thread count a rank uses, as the best of several short timings after a warm-up — on
a shared machine a busy moment can only make a timing slower, so the fastest is the honest peak. `tfctl
train` measures it once per run and records it in state.json, so every MFU of the run and of its baselines
uses the same peak (the orchestrator passes it as `spec.train.peak_flops`, which also carries a configured
`train.peak_flops`, and says how it was obtained in `spec.peak_source`); a worker started on its own without
one measures it at start.

A machine that was busy for the whole measurement still gives too low a peak. The model FLOPs a step did
are a lower bound on what the device can do, so a step (or a stage) that ran faster than the peak proves it
low: `Peak.observe` raises the peak to that rate and says so, and MFU never passes 100 %. The stage's
`stage_end` records the peak it ended with and where it came from; the orchestrator keeps the higher one
for the rest of the run.
"""

import time
from dataclasses import dataclass

import torch

GPU_PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "A10G": 125e12, "L4": 121e12, "V100": 125e12}


def gpu_peak_flops(name: str) -> float | None:
    for key, peak in GPU_PEAK_BF16.items():
        if key in name.upper():
            return peak
    return None


CPU_PEAK_TIMINGS, CPU_PEAK_SECONDS, CPU_PEAK_SIZE = 10, 0.1, 1024


def cpu_peak_method(threads: int | None) -> str:
    """How measure_cpu_peak measures, in words (recorded beside the number)."""
    return (
        f"best of {CPU_PEAK_TIMINGS} fp32 {CPU_PEAK_SIZE}x{CPU_PEAK_SIZE} matmul timings of "
        f"{CPU_PEAK_SECONDS:g} s after a warm-up, {threads or torch.get_num_threads()} thread(s)"
    )


def measure_cpu_peak(
    threads: int | None = None,
    size: int = CPU_PEAK_SIZE,
    timings: int = CPU_PEAK_TIMINGS,
    seconds: float = CPU_PEAK_SECONDS,
) -> float:
    """fp32 matmul FLOP/s on `threads` threads (default: torch's current count): the best of `timings`
    timings of about `seconds` each, after a warm-up."""
    return measure_cpu_peak_and_share(threads, size, timings, seconds)[0]


def measure_cpu_peak_and_share(
    threads: int | None = None,
    size: int = CPU_PEAK_SIZE,
    timings: int = CPU_PEAK_TIMINGS,
    seconds: float = CPU_PEAK_SECONDS,
) -> tuple[float, float]:
    """measure_cpu_peak, and the share of the threads' wall time the best timing got on a CPU (process
    CPU time / (wall time x threads)): near 1 on an uncontended machine, well below when others ran."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        count = torch.get_num_threads()
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b  # warm-up
        best, share = 0.0, 0.0
        for _ in range(timings):
            runs, start, cpu_start = 0, time.perf_counter(), time.process_time()
            while (elapsed := time.perf_counter() - start) < seconds or runs == 0:
                a @ b
                runs += 1
            flops = 2 * size**3 * runs / elapsed
            if flops > best:
                best, share = flops, (time.process_time() - cpu_start) / (elapsed * count)
        return best, min(1.0, share)
    finally:
        torch.set_num_threads(previous)


@dataclass
class Peak:
    """The peak FLOP/s per device MFU divides by, and where it came from."""

    flops: float
    given: str  # where the peak the stage started with came from
    raised_by: str | None = None  # the step (or stage average) whose rate is the peak now, if any
    given_flops: float = 0.0

    def __post_init__(self):
        self.given_flops = self.given_flops or self.flops

    @property
    def source(self) -> str:
        if self.raised_by is None:
            return self.given
        return f"{self.raised_by}'s rate, above the {self.given_flops:.4g} FLOP/s of {self.given}"

    def observe(self, flops_per_second: float, what: str) -> bool:
        """A rate per device that was achieved (`what`: "step 12"); above the peak, it becomes the peak.
        True when it did."""
        if not flops_per_second > self.flops:
            return False
        self.flops, self.raised_by = float(flops_per_second), what
        return True

    def mfu(self, flops_per_second: float) -> float:
        """`flops_per_second` per device over the peak; observe it first and this is at most 1."""
        return flops_per_second / self.flops


def peak_flops_per_device(configured: float | None, device_type: str, source: str | None = None) -> Peak:
    """The configured peak (described by `source`), else the GPU table's, else a CPU measurement now."""
    if configured:
        return Peak(float(configured), source or "train.peak_flops")
    if device_type == "cuda":
        name = torch.cuda.get_device_name()
        peak = gpu_peak_flops(name)
        if peak:
            return Peak(peak, f"the vendor's dense bf16 peak of {name}")
        return Peak(GPU_PEAK_BF16["A100"], f"the A100's dense bf16 peak ({name} is not in the table)")
    return Peak(measure_cpu_peak(), f"measured by the worker: {cpu_peak_method(None)}")
