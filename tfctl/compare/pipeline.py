"""`tfctl compare RUN`: baselines (trained or reused) + the run's metrics → report.md/json, the figure, W&B."""

import shlex
from pathlib import Path

from tfctl.compare.baselines import train_baseline
from tfctl.compare.dynamics import report_dynamics
from tfctl.compare.markdown import to_markdown
from tfctl.compare.plot import plot_ppl_vs_flops
from tfctl.compare.pool import Task, run_tasks
from tfctl.compare.report import build_report, frontier_groups
from tfctl.compare.runs import RunGroup, check_comparable, summarize_run
from tfctl.compare.siblings import (
    baseline_groups,
    earlier_groups,
    growth_group,
    plan_siblings,
    with_group,
)
from tfctl.compare.tables import headline_lines, wandb_summary, wandb_tables
from tfctl.compare.time_split import run_time_split
from tfctl.data import load_prepared
from tfctl.errors import UserError
from tfctl.files import atomic_write_json, atomic_write_text
from tfctl.model.sizes import parse_count
from tfctl.recipe import Recipe, StagePlan, load_recipe
from tfctl.recipe.plan import plan_stages
from tfctl.run.layout import RunDir
from tfctl.run.state import RunState
from tfctl.tracking.wandb_ids import wandb_run_id
from tfctl.tracking.wandb_run import log_tables, resolve_mode


def _growth_setup(run_dir: Path) -> tuple[Recipe, Path, list[StagePlan]]:
    """The growth run's recipe, its prepared data and its planned stages (what the baselines are sized on)."""
    dirs = RunDir(run_dir)
    if not dirs.recipe.is_file():
        raise UserError(
            f"{run_dir}: has no recipe.yaml, so no baseline can be derived from it; "
            "compare existing runs with --with"
        )
    recipe = load_recipe(dirs.recipe)
    data_dir = RunState.load(dirs.state, run_dir.name).data.get("data_dir")
    if not data_dir or not (Path(data_dir) / "meta.json").is_file():
        raise UserError(
            f"{run_dir}: its prepared data ({data_dir}) is gone; run `tfctl train {dirs.recipe} "
            f"-o {run_dir}` to prepare it again (finished stages are kept)"
        )
    return (
        recipe,
        Path(data_dir),
        plan_stages(recipe, load_prepared(Path(data_dir)).vocab_size),
    )


def _budgets(tokens: list[str]) -> list[int]:

    budgets = []
    for value in tokens:
        try:
            budgets.append(parse_count(value))
        except ValueError:
            raise UserError(f"--tokens {value}: not a token count like 2m or 30b") from None
    return budgets


def reproduce_commands(
    run_dir: Path,
    baselines: list[str],
    tokens: list[str],
    with_runs: list[Path],
    targets: list[float],
    seeds: int | None = None,
) -> list[str]:
    command = ["tfctl", "compare", str(run_dir)]
    for name in baselines:
        command += ["--baseline", name]
    for value in tokens:
        command += ["--tokens", value]
    if seeds:
        command += ["--seeds", str(seeds)]
    for other in with_runs:
        command += ["--with", str(other)]
    for target in targets:
        command += ["--target", f"{target:g}"]
    train = RunDir(run_dir).recipe
    lines = [shlex.join(["tfctl", "train", str(train), "-o", str(run_dir)])] if train.is_file() else []
    return lines + [shlex.join(command)]


def compare_run(
    run_dir: str | Path,
    baselines: list[str] | None = None,
    tokens: list[str] | None = None,
    with_runs: list[str | Path] | None = None,
    targets: list[float] | None = None,
    retrain: bool = False,
    wandb: bool = True,
    say=print,
    display=None,
    seeds: int | None = None,
    jobs: int = 1,
) -> dict:
    """Train or reuse the growth run's seed siblings and the baselines, compare, write
    RUN/compare/{report.md,report.json,ppl_vs_flops.png}.

    Without --with, the recipe's baselines (or `baselines`) are trained; with --with and no `baselines`,
    only the given runs are compared. `seeds` (default: the recipe's) seeds of the growth run and each
    baseline; `jobs` trainings at a time. Returns the report dict.
    """

    run_dir = Path(run_dir)
    out = RunDir(
        run_dir
    ).compare  # a compare/ that is a link is refused before anything is trained or written
    baselines, tokens = list(baselines or []), list(tokens or [])
    with_runs, targets = [Path(p) for p in with_runs or []], list(targets or [])
    main = summarize_run(run_dir)
    others = [summarize_run(path) for path in with_runs]  # before any training: fail fast
    for other in others:
        check_comparable(main, other)
    budgets = _budgets(tokens)

    growth = with_group(
        main
    )  # the run and any seed siblings (`<run>.seed<S>`), its seed read from its recipe
    groups: list[RunGroup] = []
    recipe = None
    if baselines or tokens or seeds or not with_runs:
        recipe, data_dir, stages = _growth_setup(run_dir)
        siblings = plan_siblings(run_dir, recipe, data_dir, stages, baselines, budgets, seeds, retrain)
        if jobs > 1:  # separate processes: their own output, no live display
            run_tasks(siblings.tasks, jobs, say)
        else:
            run_tasks([_inline(task, say, display) for task in siblings.tasks], jobs=1, say=say)
        growth = growth_group(siblings, run_dir, main, [s.name for s in stages])
        groups = baseline_groups(siblings, main)
    with_groups = [with_group(other) for other in others]
    for run in (run for group in with_groups for run in group.runs[1:]):
        check_comparable(main, run)
    known = [r.path for g in [growth, *groups, *with_groups] for r in g.runs]
    earlier = earlier_groups(run_dir, main, known)
    for run in (run for group in earlier for run in group.runs):
        say(f"[{run.name}] trained by an earlier compare: in the report too")
    groups += with_groups + earlier

    commands = reproduce_commands(run_dir, baselines, tokens, with_runs, targets, seeds)
    report = build_report(growth, groups, targets, commands)  # before any file: nothing half-written
    report["growth_dynamics"] = report_dynamics([growth, *with_groups])
    report["time_split"] = run_time_split(run_dir)  # the growth run's start-up, evals, exports per stage
    out.mkdir(parents=True, exist_ok=True)
    figure = out / "ppl_vs_flops.png"
    drawn = plot_ppl_vs_flops(
        [growth, *groups],
        figure,
        title=f"{run_dir.name}: perplexity vs cost",
        frontiers=frontier_groups(groups),
        caption=headline_lines(report),
    )
    report["figure"] = {"path": figure.name, **drawn}
    if wandb:
        report["wandb"] = log_comparison(report, figure, recipe, run_dir)
        if display is not None:
            trained = [r.path for g in groups for r in g.runs]
            display.wandb_notice(report["wandb"], [run_dir, *trained])
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", to_markdown(report, figure.name))
    return report


def _inline(task: Task, say, display) -> Task:
    """A task run in this process: a baseline gets the caller's `say` and live display."""
    if task.fn is train_baseline:
        return Task(task.label, train_baseline, (*task.args, say, display))
    return task


def log_comparison(report: dict, figure: Path | None, recipe, run_dir: Path) -> str:
    """A "<run>/compare" W&B run in the growth run's group with the tables, the figure and the headline
    numbers as summary values, with the recipe's W&B settings (offline without one). The mode follows the
    stage runs (WANDB_MODE wins; online without an API key falls back to offline). W&B never stops a
    comparison: a failure is a warning, the report files stay the record. Returns what happened: the mode
    it logged in, or "failed: <why>"."""
    if recipe is None and RunDir(run_dir).recipe.is_file():
        try:
            recipe = load_recipe(RunDir(run_dir).recipe)
        except UserError:
            recipe = None
    if recipe is None:
        mode, options = "offline", {"group": run_dir.name}
    else:
        w = recipe.wandb
        mode = resolve_mode(w.mode or "online")
        options = {
            "project": w.project,
            "entity": w.entity,
            "group": w.group or run_dir.name,
            "tags": list(w.tags),
        }
    return log_tables(
        report["run"],
        "compare",
        mode,
        wandb_tables(report),
        wandb_summary(report),
        "W&B logging of the comparison failed, the report files are complete",
        images={"compare/ppl_vs_flops": figure},
        directory=run_dir,
        run_id=wandb_run_id(run_dir, "compare"),
        config={"reference": report["reference"], "runs": [r["name"] for r in report["runs"]]},
        **options,
    )
