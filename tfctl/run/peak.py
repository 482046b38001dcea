"""One CPU peak FLOP/s per run, for every MFU of its stages and of its baselines (tfctl.stage.throughput).

state.json keeps it under `cpu_peak_flops`, one record per thread count a rank uses:
`{"threads=1": {"flops": 2.1e10, "source": "measured before stage s1: best of 10 ..."}}`. A stage that ran
faster than it proves it low (the worker raises its own peak and says so in `stage_end`); the record then
takes the stage's higher peak, so the stages after it (and the baselines) divide by it too.

Runs compare because each divides by the best peak seen on this machine (tfctl.run.machine_peaks), not only
by its own measurement: a run measured on a busy machine divides by an earlier, uncontended one's peak, and a
run that measures higher raises the machine's peak for the runs after it.
"""

from tfctl.launch import build_env
from tfctl.recipe.schema import LaunchSection
from tfctl.run import machine_peaks
from tfctl.run.state import RunState, is_number


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _key(launch: LaunchSection) -> tuple[str, int | None]:
    threads = build_env(launch, gpu=False).get("OMP_NUM_THREADS")
    return f"threads={threads or 'default'}", int(threads) if threads else None


def _record(value) -> dict | None:
    """A usable record: {"flops", "source"}; a bare number (runs before the source was kept) reads as one."""
    if is_number(value) and value > 0:
        return {"flops": float(value), "source": "measured (an earlier tfctl recorded no method)"}
    if isinstance(value, dict) and is_number(value.get("flops")) and value["flops"] > 0:
        return {"flops": float(value["flops"]), "source": str(value.get("source", ""))}
    return None


def run_cpu_peak(state: RunState, launch: LaunchSection, display, stage: str) -> dict | None:
    """The run's peak record for the ranks' thread count ({"flops", "source"}): measured before the first
    stage that needs it, then kept in state.json; None on GPUs, whose peaks the worker looks up."""
    if _has_gpu():
        return None
    key, threads = _key(launch)
    peaks = state.data.setdefault("cpu_peak_flops", {})
    record = _record(peaks.get(key))
    if record is None:
        with display.activity("measuring the CPU's peak FLOP/s for MFU (once per run)"):
            measured = _measure(threads, stage)
            record = machine_peaks.best_of(_machine_key(threads), measured)
        peaks[key] = record
        state.save()
        origin = (
            "measured now"
            if record is measured
            else f"the best seen on this machine, {machine_peaks.cache_path()}"
        )
        display.print(f"MFU divides by a CPU peak of {record['flops']:.3g} FLOP/s ({origin})")
    return record


def _machine_key(threads: int | None) -> str:
    import torch

    return machine_peaks.machine_key(threads or torch.get_num_threads(), torch.__version__)


UNCONTENDED_SHARE, MEASUREMENTS = 0.9, 3  # a timing that got 90 % of its threads' CPU time had the machine


def _measure(threads: int | None, stage: str) -> dict:
    """A measurement now, taken again (up to MEASUREMENTS times) while the machine is busy, saying how it was
    taken and whether the machine was busy throughout."""
    from tfctl.stage.throughput import cpu_peak_method, measure_cpu_peak_and_share

    flops, share = 0.0, 0.0
    for _ in range(MEASUREMENTS):
        measured, measured_share = measure_cpu_peak_and_share(threads)
        if measured > flops:
            flops, share = measured, measured_share
        if measured_share >= UNCONTENDED_SHARE:
            break
    busy = f"; the machine was busy (the best timing got {share:.0%} of its threads' time)"
    busy = busy if share < UNCONTENDED_SHARE else ""
    return {"flops": flops, "source": f"measured before stage {stage}: {cpu_peak_method(threads)}{busy}"}


def raise_run_cpu_peak(state: RunState, launch: LaunchSection, stage: str, result: dict) -> bool:
    """Keep a finished stage's higher peak (its worker saw a rate above the recorded one) for the rest of
    the run. True when the record changed."""
    peaks = state.data.get("cpu_peak_flops", {})
    key, _ = _key(launch)
    record = _record(peaks.get(key))
    observed = result.get("peak_flops")
    if record is None or not is_number(observed) or observed <= record["flops"]:
        return False
    peaks[key] = {"flops": float(observed), "source": f"stage {stage}: {result.get('peak_source')}"}
    state.save()
    source = f"run {state.path.parent}, {peaks[key]['source']}"
    machine_peaks.remember(_machine_key(_key(launch)[1]), {"flops": peaks[key]["flops"], "source": source})
    return True


def inherited_cpu_peaks(source_state: dict, source_name: str) -> dict:
    """A growth run's peak records for its baselines (one peak for every MFU of a comparison)."""
    records = {key: _record(value) for key, value in source_state.get("cpu_peak_flops", {}).items()}
    return {
        key: {"flops": record["flops"], "source": f"{source_name}'s peak, {record['source']}"}
        for key, record in records.items()
        if record is not None
    }
