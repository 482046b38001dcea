"""Growth ablations: how far a model moved when it grew, and where each run ended up.

For every growth record of every run: the probe-batch loss before/after growth (the operator's own check),
the val loss just before growth (the previous stage's final eval) against the new stage's step-0 eval on
the same val batches — the jump a user sees — the worst train loss of the first steps after growth, and
the stage's final val perplexity. `python -m tfctl.compare.ablation RUN [RUN ...]` prints the markdown table.
"""

import math
import sys
from pathlib import Path

from tfctl.run.layout import RunDir
from tfctl.tracking import read_metrics

SPIKE_WINDOW = 10  # train steps after growth in which a restart shock shows


def growth_jumps(run_dir: str | Path) -> list[dict]:
    run_dir = Path(run_dir)
    records = read_metrics(RunDir(run_dir).metrics)
    ends = {r["stage"]: r for r in records if r["kind"] == "stage_end"}
    order = [r["stage"] for r in records if r["kind"] == "stage_end"]
    rows = []
    for growth in (r for r in records if r["kind"] == "growth"):
        stage, source = growth["stage"], growth.get("source")
        if stage not in ends or source not in ends:
            continue
        start = next(
            (r for r in records if r["kind"] == "eval" and r["stage"] == stage and r["step"] == 0), None
        )
        before = [r["loss"] for r in records if r["kind"] == "train" and r["stage"] == source]
        after = [r["loss"] for r in records if r["kind"] == "train" and r["stage"] == stage][:SPIKE_WINDOW]
        rows.append(
            {
                "run": run_dir.name,
                "stage": stage,
                "init": growth.get("init"),
                "optimizer": growth.get("optimizer"),
                "max_abs_logit_diff": growth["max_abs_logit_diff"],
                "probe_loss_before": growth["loss_before"],
                "probe_loss_after": growth["loss_after"],
                "val_loss_before": ends[source]["val_loss"],
                "val_loss_after_growth": start["val_loss"] if start else None,
                "val_jump": start["val_loss"] - ends[source]["val_loss"] if start else None,
                "train_loss_before": before[-1] if before else None,
                "worst_train_loss_after": max(after) if after else None,
                "stage_val_ppl": ends[stage]["val_ppl"],
                "final_val_ppl": ends[order[-1]]["val_ppl"],
            }
        )
    return rows


def _number(value, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and (value == 0 or 1e-3 <= abs(value) < 1e5):
        return f"{value:.{digits}f}"
    return f"{value:.2e}" if isinstance(value, float) and math.isfinite(value) else str(value)


def markdown(rows: list[dict]) -> str:
    head = (
        "| run | grown stage | init | optimizer | max \\|Δlogits\\| | val loss before → after growth (jump) "
        f"| train loss before → worst of next {SPIKE_WINDOW} | stage val ppl | final val ppl |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['stage']} | {r['init']} | {r['optimizer']} | {_number(r['max_abs_logit_diff'])} "
            f"| {_number(r['val_loss_before'])} → {_number(r['val_loss_after_growth'])} "
            f"({'+' if (r['val_jump'] or 0) >= 0 else ''}{_number(r['val_jump'])}) "
            f"| {_number(r['train_loss_before'])} → {_number(r['worst_train_loss_after'])} "
            f"| {_number(r['stage_val_ppl'], 2)} | {_number(r['final_val_ppl'], 2)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown([row for run in sys.argv[1:] for row in growth_jumps(run)]))
