"""Timing on a noisy machine: every case runs once per round, round after round, so a burst of load from a
neighbour slows all cases alike and the ratios of their medians stay meaningful."""

import statistics
import time
from collections.abc import Callable

import torch


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def interleaved_medians(
    cases: dict[str, Callable[[], None]], rounds: int, warmup: int, device: str = "cpu"
) -> dict[str, dict]:
    """Median and spread of the seconds of each case, measured round-robin after `warmup` untimed calls each
    (which is also when torch.compile compiles: its time is reported separately as `first_call_s`)."""
    first_call = {}
    for name, case in cases.items():
        start = time.perf_counter()
        for _ in range(max(1, warmup)):
            case()
        synchronize(device)
        first_call[name] = time.perf_counter() - start
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    cpu_seconds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, case in cases.items():
            synchronize(device)
            start, start_cpu = time.perf_counter(), time.process_time()
            case()
            synchronize(device)
            seconds[name].append(time.perf_counter() - start)
            cpu_seconds[name].append(time.process_time() - start_cpu)
    return {
        name: {
            "median_s": statistics.median(times),
            "min_s": min(times),
            "max_s": max(times),
            "rounds": len(times),
            "first_call_s": first_call[name],
            # process CPU time: what the case itself used, however long other processes held the cores
            "cpu_median_s": statistics.median(cpu_seconds[name]),
        }
        for name, times in seconds.items()
    }


def matmul_case(size: int, dtype: torch.dtype, device: str) -> tuple[Callable[[], None], float]:
    """A square matmul and its FLOPs: the machine's peak for `dtype`, measured like everything else."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    return (lambda: a @ b), 2.0 * size**3
