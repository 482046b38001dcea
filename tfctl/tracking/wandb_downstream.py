"""`tfctl compare --tasks` on W&B: the downstream table as a `<run>/downstream` run in the growth run's group.

Like the comparison run, W&B never stops the command: a failure is a warning, report.json/md stay the record.
"""

import logging
import os
from pathlib import Path

from tfctl.tracking.wandb_run import resolve_mode

log = logging.getLogger(__name__)


def log_downstream(
    table: dict,
    run_name: str,
    mode: str,
    project: str = "tfctl",
    entity: str | None = None,
    group: str | None = None,
    directory: str | Path | None = None,
    tags: list[str] | None = None,
) -> str:
    """Log `table` (tfctl.evaluate.compare_table.downstream_table). Returns the mode, or "failed: <why>"."""
    mode = resolve_mode(mode)
    if mode == "disabled":
        return mode
    try:
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        from tfctl.evaluate.compare_table import columns

        cols = columns(table)
        run = wandb.init(
            project=project,
            entity=entity,
            group=group or run_name,
            name=f"{run_name}/downstream",
            job_type="downstream",
            tags=list(tags or []),
            dir=str(directory or "."),
            mode=mode,
            config={"tasks": table["tasks"], "limit": table["limit"]},
            settings=wandb.Settings(console="off", quiet=True),
        )
        try:
            rows = [[r["label"]] + [r["results"].get(t, {}).get(m) for t, m in cols] for r in table["rows"]]
            run.log({"downstream": wandb.Table(columns=["model"] + [f"{t}/{m}" for t, m in cols], data=rows)})
            run.summary.update(
                {
                    f"{r['label']}/{t}/{m}": r["results"].get(t, {}).get(m)
                    for r in table["rows"]
                    for t, m in cols
                }
            )
        finally:
            run.finish()
        return mode
    except Exception as error:  # noqa: BLE001 — W&B must never stop a comparison
        log.warning("W&B logging of the downstream table failed, the report files are complete: %s", error)
        return f"failed: {error}"
