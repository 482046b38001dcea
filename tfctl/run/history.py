"""How long a run's stages took: the time model behind `tfctl plan`'s estimates.

A stage takes a fixed part — worker start-up, the step-0 and final evaluations, checkpoints, export, and for
a grown stage its growth — plus its FLOPs at the rate its training steps ran. A tiny stage is mostly the
fixed part, so dividing its FLOPs by an average rate alone is several times off. Both parts come from the
run's finished stages: the rate from the train records' step times, the fixed part from each stage's elapsed
time (what the orchestrator waited for, `elapsed_seconds` in state.json; the worker's own wall time for a
stage from before it was recorded) minus the time of its steps. A history without step times falls back to
`DEFAULT_STAGE_OVERHEAD_SECONDS` (tfctl/recipe/plan.py).
"""

from tfctl.errors import UserError
from tfctl.recipe.plan import DEFAULT_STAGE_OVERHEAD_SECONDS, StageTimes
from tfctl.run.layout import RunDir
from tfctl.run.state import DONE, RunState, is_number
from tfctl.tracking.metrics_file import read_metrics


def _elapsed(state: RunState | None, end: dict) -> float:
    """What the stage cost end to end; a resumed stage's worker wall time covers its earlier parts."""
    recorded = state.stages().get(end["stage"], {}).get("elapsed_seconds") if state else None
    wall = float(end["wall_seconds"])
    return max(float(recorded), wall) if is_number(recorded) else wall


def _step_seconds(records: list[dict], stage: str, steps: int) -> float | None:
    """The time of a stage's training steps (its logged steps' times, scaled to all its steps)."""
    times = [
        r["step_seconds"] for r in records if r.get("stage") == stage and is_number(r.get("step_seconds"))
    ]
    return sum(times) * steps / len(times) if times else None


def stage_times(run: RunDir) -> StageTimes | None:
    """The time model measured on `run`'s finished stages, or None when it has none."""
    if not run.metrics.is_file():
        return None
    try:
        state = RunState.load(run.state, run.root.name) if run.state.is_file() else None
    except UserError:
        state = None  # a damaged state.json: the worker's wall times still tell most of it
    ends = [
        r
        for r in read_metrics(run.metrics, kind="stage_end")
        if all(is_number(r.get(k)) for k in ("stage_flops", "wall_seconds", "steps"))
        and r["wall_seconds"] > 0
    ]
    if state is not None:
        ends = [r for r in ends if state.stages().get(r.get("stage"), {}).get("status") == DONE]
    if not ends:
        return None
    trains = read_metrics(run.metrics, kind="train")
    measured = [(end, _step_seconds(trains, end["stage"], int(end["steps"]))) for end in ends]
    flops = sum(end["stage_flops"] for end in ends)
    where = f"{len(ends)} finished stage(s) of {run.root}"
    if all(seconds for _, seconds in measured):
        rate = flops / sum(seconds for _, seconds in measured)
        overheads = [_elapsed(state, end) - end["stage_flops"] / rate for end, _ in measured]
        return StageTimes(rate, max(0.0, sum(overheads) / len(overheads)), f"measured on {where}")
    # no step times: the default fixed part, the rest of each stage at the rate (at least half of it)
    overhead = DEFAULT_STAGE_OVERHEAD_SECONDS
    seconds = sum(max(_elapsed(state, end) - overhead, _elapsed(state, end) / 2) for end in ends)
    return StageTimes(flops / seconds, overhead, f"rate of {where}, default {overhead:g} s per stage")
