"""`tfctl compare --tasks` on W&B: the downstream table as a `<run>/downstream` run in the growth run's group.

Like the comparison run, W&B never stops the command: a failure is a warning, report.json/md stay the record.
"""

from pathlib import Path

from tfctl.tracking.wandb_run import log_side_run


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

    def fill(wandb, run) -> None:
        from tfctl.evaluate.compare_table import columns  # the table's own column order

        cols = columns(table)
        rows = [[r["label"]] + [r["results"].get(t, {}).get(m) for t, m in cols] for r in table["rows"]]
        run.log({"downstream": wandb.Table(columns=["model"] + [f"{t}/{m}" for t, m in cols], data=rows)})
        run.summary.update(
            {f"{r['label']}/{t}/{m}": r["results"].get(t, {}).get(m) for r in table["rows"] for t, m in cols}
        )

    return log_side_run(
        run_name,
        "downstream",
        mode,
        fill,
        "W&B logging of the downstream table failed, the report files are complete",
        project=project,
        entity=entity,
        group=group,
        directory=directory,
        tags=tags,
        config={"tasks": table["tasks"], "limit": table["limit"]},
    )
