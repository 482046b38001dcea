"""Where a run's wall time went, stage by stage: start-up, training steps, evaluations, the rest of the loop
(checkpoints, records) and the export — from the run's own metrics.jsonl (issue 28).

The worker's records carry `wall_seconds` (since the worker's `main()`, earlier attempts included) and each
train record its `step_seconds`, so a stage splits as:

    start-up  main() → the step-0 evaluation began (spec, DeepSpeed, data, model, engine, W&B); the step-0
              evaluation's own time is taken as the median of the stage's other evaluations
    steps     the training steps (the sum of their `step_seconds`)
    evals     every evaluation: the wall time between a step's train record and its eval record
    other     the rest of the loop up to the last record before `stage_end` (checkpoints, logging)
    export    that record → `stage_end` (final evaluation reused, final/ written with its manifest)

The interpreter's start and `import torch` before `main()` are not in the records (about 1.5 s a stage on
CPU: docs/benchmarks.md, stage start-up). A stage without the pieces (never finished, no step-0 eval) is
left out.
"""

import statistics
from pathlib import Path

from tfctl.tracking.metrics_file import read_metrics

PHASES = ("start-up", "steps", "evals", "other", "export")


def stage_time_split(records: list[dict]) -> dict | None:
    """{phase: seconds} plus `wall` of one stage's records (in file order), or None when they do not tell."""
    records = [r for r in records if r.get("kind") in ("train", "eval", "stage_end")]
    try:
        first_eval = next(r for r in records if r["kind"] == "eval" and r["step"] == 0)
        end = next(r for r in records if r["kind"] == "stage_end")
        before_end = records[records.index(end) - 1]
        evals, steps, previous = [], 0.0, None
        for record in records:
            if record["kind"] == "train":
                steps += record["step_seconds"]
            elif record["kind"] == "eval" and previous is not None and previous["step"] == record["step"]:
                evals.append(record["wall_seconds"] - previous["wall_seconds"])
            previous = record
        step0_eval = statistics.median(evals) if evals else 0.0
        startup = first_eval["wall_seconds"] - step0_eval
        loop = before_end["wall_seconds"] - startup
        evals_total = sum(evals) + step0_eval
        return {
            "start-up": startup,
            "steps": steps,
            "evals": evals_total,
            "other": loop - steps - evals_total,
            "export": end["wall_seconds"] - before_end["wall_seconds"],
            "wall": end["wall_seconds"],
        }
    except (StopIteration, KeyError, TypeError, ValueError):
        return None


def run_time_split(run_dir: str | Path) -> list[dict]:
    """One row per finished stage of the run: {"stage", "wall", phase seconds...}."""
    records = read_metrics(Path(run_dir) / "metrics.jsonl")
    stages = list(dict.fromkeys(r.get("stage") for r in records if r.get("kind") == "stage_end"))
    rows = []
    for stage in stages:
        split = stage_time_split([r for r in records if r.get("stage") == stage])
        if split is not None:
            rows.append({"stage": stage, **split})
    return rows


def time_split_rows(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """The table: seconds per phase and the share of the stage's wall time outside the training steps."""
    columns = ["stage", "wall s", *(f"{phase} s" for phase in PHASES), "not training"]
    table = []
    for row in [*rows, *([_total(rows)] if len(rows) > 1 else [])]:
        outside = 1 - row["steps"] / row["wall"] if row["wall"] > 0 else 0.0
        table.append(
            [row["stage"], f"{row['wall']:.1f}", *(f"{row[p]:.1f}" for p in PHASES), f"{outside:.0%}"]
        )
    return columns, table


def _total(rows: list[dict]) -> dict:
    return {"stage": "all", **{key: sum(r[key] for r in rows) for key in ("wall", *PHASES)}}
