"""`tfctl compare` on W&B: one `compare` run in the growth run's group with the tables, the figure and the
headline numbers as summary values.

The mode follows the stage runs (WANDB_MODE wins; online without an API key falls back to offline). W&B never
stops a comparison: any failure is a warning, the report files stay the record. Returns what happened.
"""

import logging
import os
from pathlib import Path

from tfctl.tracking.wandb_run import resolve_mode

log = logging.getLogger(__name__)


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
    mode = resolve_mode(mode)
    if mode == "disabled":
        return mode
    try:
        _log(report, figure, mode, project, entity, group, directory, tags)
        return mode
    except Exception as error:  # noqa: BLE001 — W&B must never stop a comparison
        log.warning("W&B logging of the comparison failed, the report files are complete: %s", error)
        return f"failed: {error}"


def _log(report, figure, mode, project, entity, group, directory, tags) -> None:
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb

    from tfctl.compare.report import run_values, target_values

    directory = Path(directory or ".")
    directory.mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=project,
        entity=entity,
        group=group or report["run"],
        name=f"{report['run']}/compare",
        job_type="compare",
        tags=list(tags or []),
        dir=str(directory),
        mode=mode,
        config={"reference": report["reference"], "runs": [r["name"] for r in report["runs"]]},
        settings=wandb.Settings(console="off", quiet=True),
    )
    try:
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
    finally:
        run.finish()
