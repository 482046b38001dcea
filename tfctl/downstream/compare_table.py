"""`tfctl compare RUN --tasks ...`: the downstream table, growth stages against the baselines.

Every finished stage of the growth run and the final model of every compared run is evaluated on the
same tasks; the table goes into report.json (`downstream`) and report.md (its own section).
"""

import json
from pathlib import Path

from tfctl.downstream.tasks import evaluate_tasks, load_tasks, parse_tasks, task_manager
from tfctl.files import atomic_write_text
from tfctl.recipe import load_recipe
from tfctl.run.layout import RunDir
from tfctl.tracking.wandb_ids import wandb_run_id
from tfctl.tracking.wandb_run import log_tables


def downstream_models(report: dict) -> list[tuple[str, Path]]:
    """(label, model dir): each stage of the growth run, then each compared run's last stage."""
    main, *others = report["runs"]
    models = [
        (f"{main['label']}/{stage}", RunDir(Path(main["path"])).final(stage)) for stage in main["stages"]
    ]
    models += [(run["label"], RunDir(Path(run["path"])).final(run["stages"][-1])) for run in others]
    return models


def downstream_table(
    report: dict, names: list[str], built: dict, limit: int | None = None, batch_size: int = 8
) -> dict:
    """Every model of `downstream_models` on the tasks `built` by `prepare_tasks`."""
    rows = []
    for label, model_dir in downstream_models(report):
        result = evaluate_tasks(model_dir, names, limit=limit, batch_size=batch_size, tasks_built=built)
        rows.append({"label": label, "model": str(model_dir), "results": result["results"]})
    return {"tasks": names, "limit": limit, "rows": rows}


def prepare_tasks(tasks, include_path: Path | None = None) -> tuple[list[str], dict]:
    """(names, built tasks): done before any baseline trains, so a bad task name or missing data fails fast."""
    names = parse_tasks(tasks)
    return names, load_tasks(names, task_manager(names, include_path))


def columns(table: dict) -> list[tuple[str, str]]:
    """(task, metric) pairs in first-seen order."""
    seen: dict = {}
    for row in table["rows"]:
        for task, metrics in row["results"].items():
            for metric in metrics:
                seen[(task, metric)] = None
    return list(seen)


def to_markdown(table: dict) -> str:
    cols = columns(table)
    limit = f" (first {table['limit']} examples per task)" if table["limit"] else ""
    lines = [f"## Downstream tasks{limit}", ""]
    lines.append("| model | " + " | ".join(f"{task} {metric}" for task, metric in cols) + " |")
    lines.append("|---|" + "---|" * len(cols))
    for row in table["rows"]:
        values = [row["results"].get(task, {}).get(metric) for task, metric in cols]
        cells = ["—" if v is None else f"{v:.4g}" for v in values]
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def add_downstream(run_dir: Path, report: dict, names: list[str], built: dict, limit=None) -> dict:
    """Evaluate, add the table to RUN/compare/report.json and report.md, log it to W&B. Returns the table."""
    table = downstream_table(report, names, built, limit)
    table["wandb"] = log_wandb(Path(run_dir), table)
    report["downstream"] = table
    out = RunDir(Path(run_dir)).compare
    atomic_write_text(out / "report.json", json.dumps(report, indent=2) + "\n")
    markdown = (out / "report.md").read_text() if (out / "report.md").is_file() else ""
    atomic_write_text(out / "report.md", markdown.rstrip("\n") + "\n\n" + to_markdown(table))
    return table


def log_wandb(run_dir: Path, table: dict) -> str:
    """The downstream table as a "<run>/downstream" W&B run in the growth run's group, with its recipe's
    settings (offline when it has no recipe). Like the comparison run, W&B never stops the command: a
    failure is a warning, report.json/md stay the record. Returns the mode, or "failed: <why>"."""
    cols = columns(table)
    rows = [[r["label"]] + [r["results"].get(t, {}).get(m) for t, m in cols] for r in table["rows"]]
    summary = {
        f"{r['label']}/{t}/{m}": r["results"].get(t, {}).get(m) for r in table["rows"] for t, m in cols
    }
    if RunDir(run_dir).recipe.is_file():
        w = load_recipe(RunDir(run_dir).recipe).wandb
        mode = w.mode or "online"
        options = {
            "project": w.project,
            "entity": w.entity,
            "group": w.group or run_dir.name,
            "tags": list(w.tags),
        }
    else:
        mode, options = "offline", {}
    return log_tables(
        run_dir.name,
        "downstream",
        mode,
        {"downstream": (["model"] + [f"{t}/{m}" for t, m in cols], rows)},
        summary,
        "W&B logging of the downstream table failed, the report files are complete",
        directory=run_dir,
        run_id=wandb_run_id(run_dir, "downstream"),
        config={"tasks": table["tasks"], "limit": table["limit"]},
        **options,
    )
