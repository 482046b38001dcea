"""`tfctl compare` on W&B: one `compare` run in the growth run's group with the tables, the figure and the
headline numbers as summary values.

The mode follows the stage runs (WANDB_MODE wins; online without an API key falls back to offline). W&B never
stops a comparison: any failure is a warning, the report files stay the record. Returns what happened.
"""

from pathlib import Path

from tfctl.tracking.wandb_run import log_side_run


def log_comparison(
    report: dict,
    figure: str | Path | None,
    mode: str,
    project: str = "tfctl",
    entity: str | None = None,
    group: str | None = None,
    directory: str | Path | None = None,
    tags: list[str] | None = None,
) -> str:
    """Log `report` (tfctl.compare.report.build_report) as a W&B run named "<run>/compare".

    Returns the mode it logged in ("online", "offline", "disabled"), or "failed: <why>".
    """

    def fill(wandb, run) -> None:
        from tfctl.compare.report import run_values, target_values

        values = {}
        for key, (columns, rows) in (
            ("compare/runs", run_values(report)),  # numbers, not formatted strings: W&B sorts them
            ("compare/flops_to_reach", target_values(report)),
        ):
            values[key] = wandb.Table(columns=columns, data=rows)
        if figure and Path(figure).is_file():
            values["compare/ppl_vs_flops"] = wandb.Image(str(figure))
        run.log(values)
        summary = {}
        for r in report["runs"]:
            for field in ("val_ppl", "val_loss", "flops", "device_hours", "params", "tokens"):
                summary[f"{r['name']}/{field}"] = r[field]
        for h in report["headline"]:
            for key in (
                "flops_ratio",
                "ppl_gap_pct",
                "device_hours_ratio",
                "frontier_flops_ratio",
                "n_seeds",
            ):
                summary[f"{key}/{h['against']}"] = h.get(key)
        if report["flops_to_reach"] and report["reference"]:
            summary["speedup_to_reference_ppl"] = report["flops_to_reach"][0]["speedup"].get(report["run"])
        run.summary.update(summary)

    return log_side_run(
        report["run"],
        "compare",
        mode,
        fill,
        "W&B logging of the comparison failed, the report files are complete",
        project=project,
        entity=entity,
        group=group,
        directory=directory,
        tags=tags,
        config={"reference": report["reference"], "runs": [r["name"] for r in report["runs"]]},
    )
