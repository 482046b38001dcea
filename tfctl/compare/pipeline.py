"""`tfctl compare RUN`: baselines (trained or reused) + the run's metrics → report.md/json, the figure, W&B."""

import shlex
from pathlib import Path

from tfctl.compare.baselines import plan_jobs, select_baselines, sibling_dir, train_baseline
from tfctl.compare.plot import plot_ppl_vs_flops
from tfctl.compare.pool import Task, run_tasks, train_growth_seed
from tfctl.compare.report import build_report, to_markdown
from tfctl.compare.runs import RunGroup, RunSummary, check_comparable, summarize_run
from tfctl.compare.seeds import growth_seed_dir, growth_seed_recipe, seed_values
from tfctl.data import load_prepared
from tfctl.errors import UserError
from tfctl.files import atomic_write_json, atomic_write_text
from tfctl.model.sizes import parse_count
from tfctl.recipe import Recipe, StagePlan, load_recipe
from tfctl.recipe.plan import plan_recipe
from tfctl.run.layout import RunDir
from tfctl.run.state import RunState
from tfctl.tracking.wandb_compare import log_comparison
from tfctl.tracking.wandb_run import resolve_mode


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
        plan_recipe(recipe, vocab_size=load_prepared(Path(data_dir)).vocab_size).stages,
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


def _summary(path: Path, seed: int | None, stages: list[str] | None) -> RunSummary | None:
    """A run's summary (None before its first finished stage); complete only when `stages` all finished."""
    if not RunDir(path).is_run():
        return None
    try:
        run = summarize_run(path)
    except UserError:
        return None
    run.seed = seed
    if stages is not None:
        run.complete = run.complete and run.stages == stages
    return run


def _plan(run_dir, recipe, data_dir, stages, baselines, budgets, seeds, retrain):
    """The growth run's seed siblings and every baseline run: (tasks to train, the groups to report)."""
    count = seeds or recipe.seeds
    tasks = []
    growth_dirs = {seed: growth_seed_dir(run_dir, recipe, seed) for seed in seed_values(recipe, count)}
    for seed, path in growth_dirs.items():
        if path != run_dir:
            tasks.append(
                Task(path.name, train_growth_seed, (growth_seed_recipe(recipe, run_dir, seed), path))
            )
    jobs = []
    for section in select_baselines(recipe, baselines):
        section_seeds = seed_values(recipe, section.seeds or count)
        for budget in budgets if budgets and section.kind == "scratch" else [None]:
            family = sibling_dir(run_dir, section, budget).name
            planned = plan_jobs(run_dir, recipe, section, budget, stages, section_seeds)
            for job in planned:
                tasks.append(Task(job.name, train_baseline, (job, recipe, data_dir, retrain)))
            jobs.append((family if len({j.member for j in planned}) > 1 else None, planned))
    return tasks, growth_dirs, jobs


def compare_run(
    run_dir: str | Path,
    baselines: list[str] | None = None,
    tokens: list[str] | None = None,
    with_runs: list[str | Path] | None = None,
    targets: list[float] | None = None,
    retrain: bool = False,
    wandb: bool = True,
    say=print,
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
    baselines, tokens = list(baselines or []), list(tokens or [])
    with_runs, targets = [Path(p) for p in with_runs or []], list(targets or [])
    if not run_dir.exists():
        raise UserError(f"{run_dir}: no such run directory")
    main = summarize_run(run_dir)
    others = [summarize_run(path) for path in with_runs]  # before any training: fail fast
    for other in others:
        check_comparable(main, other)
    budgets = _budgets(tokens)

    growth = RunGroup(label=run_dir.name, kind="growth", runs=[main])
    groups: list[RunGroup] = []
    recipe = None
    if baselines or tokens or seeds or not with_runs:
        recipe, data_dir, stages = _growth_setup(run_dir)
        planned_stages = [s.name for s in stages]
        tasks, growth_dirs, baseline_jobs = _plan(
            run_dir, recipe, data_dir, stages, baselines, budgets, seeds, retrain
        )
        if jobs > 1:
            run_tasks(tasks, jobs, say)
        else:
            _run_inline(tasks, say)
        growth.runs = [
            run
            for seed, path in growth_dirs.items()
            if (run := _summary(path, seed, planned_stages)) is not None
        ]
        for family, planned in baseline_jobs:
            for member in dict.fromkeys(j.group for j in planned):
                runs = [
                    run
                    for j in planned
                    if j.group == member and (run := _summary(j.directory, j.seed, [p.name for p in j.plans]))
                ]
                if runs:
                    groups.append(RunGroup(label=member, kind=runs[0].kind, runs=runs, family=family))
        for group in groups:
            for run in group.runs:
                check_comparable(main, run)
    groups += [RunGroup(label=o.name, kind=o.kind, runs=[o]) for o in others]

    out = RunDir(run_dir).compare
    out.mkdir(parents=True, exist_ok=True)
    commands = reproduce_commands(run_dir, baselines, tokens, with_runs, targets, seeds)
    report = build_report(growth, groups, targets, commands)
    figure = out / "ppl_vs_flops.png"
    report["figure"] = {
        "path": figure.name,
        "lines": plot_ppl_vs_flops([growth, *groups], figure, title=f"{run_dir.name}: perplexity vs cost"),
    }
    if wandb:
        report["wandb"] = _log_wandb(report, figure, recipe, run_dir)
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", to_markdown(report, figure.name))
    return report


def _run_inline(tasks: list[Task], say) -> None:
    """One task after the other in this process, with the caller's `say` for the baselines' lines."""
    run_tasks(
        [Task(t.label, t.fn, (*t.args, say)) if t.fn is train_baseline else t for t in tasks], jobs=1, say=say
    )


def _log_wandb(report: dict, figure: Path, recipe, run_dir: Path) -> str:

    if recipe is None and RunDir(run_dir).recipe.is_file():
        try:
            recipe = load_recipe(RunDir(run_dir).recipe)
        except UserError:
            recipe = None
    if recipe is None:
        return log_comparison(report, figure, mode="offline", group=run_dir.name, directory=run_dir)
    w = recipe.wandb
    return log_comparison(
        report,
        figure,
        mode=resolve_mode(recipe.wandb.mode or "online"),
        project=w.project,
        entity=w.entity,
        group=w.group or recipe.name,
        directory=run_dir,
        tags=list(w.tags),
    )
