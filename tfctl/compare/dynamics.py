"""Growth dynamics: what a growth does to the loss, read from a run's metrics.jsonl. Pure.

For every grown stage (every stage after the first): the validation loss just before the growth (the previous
stage's last evaluation) and at the growth step (the grown model's step-0 evaluation), the jump between them,
and how many steps the grown stage took to get back to the pre-growth loss — on the evaluations (the first
eval step whose val loss is ≤ the pre-growth one) and on the training loss (the first step whose mean over the
last `TRAIN_WINDOW` steps, a full window, is ≤ the mean of the previous stage's last `TRAIN_WINDOW`); None when
it never did.
A stage is evaluated at step 0, at the end of the τ anneal (`model.anneal`) and every `eval_interval`, so the
eval recovery is only as fine as those steps: the train recovery (every step) is the finer one.
"""

import math
import statistics
from pathlib import Path

from tfctl.tracking import read_metrics

TRAIN_WINDOW = 10  # steps a training loss is averaged over (one step's loss is one batch: noisy)


def _loss(record: dict, key: str) -> float | None:
    value = record.get(key)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _by_step(records: list[dict], kind: str, stage: str, key: str) -> list[tuple[int, float]]:
    points = [
        (r["step"], _loss(r, key))
        for r in records
        if r.get("kind") == kind and r.get("stage") == stage and isinstance(r.get("step"), int)
    ]
    return sorted((step, loss) for step, loss in points if loss is not None)


def _train_recovery(before: list[tuple[int, float]], after: list[tuple[int, float]]) -> dict:
    window = [loss for _, loss in before[-TRAIN_WINDOW:]]
    pre = statistics.fmean(window) if window else None
    first = [loss for _, loss in after[:TRAIN_WINDOW]]
    recovered = None
    if pre is not None:
        for i in range(TRAIN_WINDOW - 1, len(after)):  # full windows only: a partial one is one noisy batch
            recent = [loss for _, loss in after[i + 1 - TRAIN_WINDOW : i + 1]]
            if statistics.fmean(recent) <= pre:
                recovered = after[i][0]
                break
    return {
        "pre_growth_train_loss": pre,
        "worst_train_loss_after": max(first) if first else None,  # over the grown stage's first steps
        "train_recovery_steps": recovered,
    }


def growth_dynamics(records: list[dict], stages: list[str] | None = None) -> list[dict]:
    """One dict per grown stage of a run whose metrics are `records` (as `read_metrics` gives them), in stage
    order (`stages`, default: the order stages first appear in the records)."""
    if stages is None:
        stages = list(dict.fromkeys(r.get("stage") for r in records if isinstance(r.get("stage"), str)))
    out = []
    for before, stage in zip(stages[:-1], stages[1:], strict=True):
        evals_before = _by_step(records, "eval", before, "val_loss")
        evals = _by_step(records, "eval", stage, "val_loss")
        pre = evals_before[-1][1] if evals_before else None
        at_growth = evals[0][1] if evals and evals[0][0] == 0 else None
        recovered = next((step for step, loss in evals if pre is not None and loss <= pre), None)
        out.append(
            {
                "stage": stage,
                "pre_growth_val_loss": pre,
                "growth_val_loss": at_growth,
                "loss_jump": at_growth - pre if pre is not None and at_growth is not None else None,
                "recovery_steps": recovered,
                "eval_steps": [step for step, _ in evals],
                **_train_recovery(
                    _by_step(records, "train", before, "loss"), _by_step(records, "train", stage, "loss")
                ),
            }
        )
    return out


def run_dynamics(run_dir: Path, stages: list[str]) -> list[dict]:
    """`growth_dynamics` of a run directory's metrics.jsonl."""
    return growth_dynamics(read_metrics(Path(run_dir) / "metrics.jsonl"), stages)


def report_dynamics(groups) -> list[dict]:
    """The report's `growth_dynamics`: every run (each seed) of the growth groups among `groups` (RunGroups)."""
    return [
        {"run": run.name, "seed": run.seed, "stages": run_dynamics(run.path, run.stages)}
        for group in groups
        if group.kind == "growth"
        for run in group.runs
    ]


def _show(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def dynamics_markdown(entries: list[dict]) -> list[str]:
    """report.md's section: one row per growth run (and seed) and grown stage; [] when there is none."""
    rows = [(e["run"], d) for e in entries for d in e["stages"]]
    if not rows:
        return []
    lines = [
        "## Growth dynamics: the loss jump at growth and the steps to recover",
        "",
        "| run | stage | val loss before | at growth | jump | recovered (eval) | train before | worst train "
        f"(first {TRAIN_WINDOW}) | recovered (train, {TRAIN_WINDOW}-step mean) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run, d in rows:
        jump = "—" if d["loss_jump"] is None else f"{d['loss_jump']:+.4f}"
        steps = [d["recovery_steps"], d["train_recovery_steps"]]
        eval_at, train_at = ("never" if s is None else f"step {s}" for s in steps)
        lines.append(
            f"| {run} | {d['stage']} | {_show(d['pre_growth_val_loss'])} | {_show(d['growth_val_loss'])} | "
            f"{jump} | {eval_at} | {_show(d['pre_growth_train_loss'])} | {_show(d['worst_train_loss_after'])} "
            f"| {train_at} |"
        )
    lines += [
        "",
        "Before: the previous stage's last val loss (train: the mean of its last "
        f"{TRAIN_WINDOW} steps); at growth: the grown model at step 0. Recovered: the first step of the grown "
        "stage at or below the pre-growth loss, on the evaluations (step 0, the anneal's end, every "
        "eval_interval) or on the training loss; never: not within the stage.",
        "",
    ]
    return lines
