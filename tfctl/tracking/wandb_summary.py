"""The end of `tfctl train` on W&B: one `summary` run in the run's group with a table of the stages.

Like every W&B call in tfctl, a failure is a warning: metrics.jsonl and state.json stay the record.
"""

from pathlib import Path

from tfctl.tracking.wandb_ids import wandb_run_id
from tfctl.tracking.wandb_run import log_side_run

COLUMNS = ("stage", "params", "stage_tokens", "tokens", "flops", "val_loss", "val_ppl", "wall_seconds", "mfu")


def log_run_summary(
    name: str,
    results: dict[str, dict],
    growth: dict[str, dict],
    mode: str,
    project: str = "tfctl",
    entity: str | None = None,
    group: str | None = None,
    directory: str | Path | None = None,
    tags: list[str] | None = None,
) -> str:
    """Log the stage table (`results`: stage → stage_end record) and each growth's check as "<name>/summary"."""

    def fill(wandb, run) -> None:
        rows = [[stage, *(result.get(column) for column in COLUMNS[1:])] for stage, result in results.items()]
        growth_rows = [
            [
                stage,
                g.get("init"),
                g.get("params_before"),
                g.get("params_after"),
                g.get("max_abs_logit_diff"),
                g.get("loss_before"),
                g.get("loss_after"),
            ]
            for stage, g in growth.items()
        ]
        run.log(
            {
                "summary/stages": wandb.Table(columns=list(COLUMNS), data=rows),
                "summary/growth": wandb.Table(
                    columns=[
                        "stage",
                        "init",
                        "params_before",
                        "params_after",
                        "max_abs_logit_diff",
                        "loss_before",
                        "loss_after",
                    ],
                    data=growth_rows,
                ),
            }
        )
        last = list(results.values())[-1]
        run.summary.update(
            {
                "final/val_ppl": last.get("val_ppl"),
                "final/val_loss": last.get("val_loss"),
                "final/params": last.get("params"),
                "total/flops": last.get("flops"),
                "total/tokens": last.get("tokens"),
            }
        )

    return log_side_run(
        name,
        "summary",
        mode,
        fill,
        "W&B summary of the run failed, metrics.jsonl is complete",
        project=project,
        entity=entity,
        group=group,
        directory=directory,
        tags=tags,
        run_id=wandb_run_id(directory, "summary") if directory else None,
    )
