"""The sibling runs of a comparison: the growth run's seed siblings and every baseline run (a size of a
family, a seed), as tasks to train and, once trained, as the groups a report aggregates over seeds.

    runs/tiny                                   the growth run (seed s)
    runs/tiny.seed<s+1000>, ...                 its seed siblings (`--seeds`, recipe `seeds`)
    runs/tiny.baseline-<name>[-<size>][-<budget>][.seed<seed>]    baselines (tfctl.compare.baselines)

A run enters a headline only when complete: every stage it was planned with finished.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tfctl.compare.baselines import BaselineJob, plan_jobs, select_baselines, train_baseline
from tfctl.compare.pool import Task, train_growth_seed
from tfctl.compare.runs import BASELINE_FILE, RunGroup, RunSummary, check_comparable, summarize_run
from tfctl.compare.seeds import growth_seed_dir, growth_seed_recipe, seed_values
from tfctl.errors import UserError
from tfctl.recipe import Recipe, StagePlan
from tfctl.run.layout import RunDir


@dataclass
class Siblings:
    tasks: list[Task] = field(default_factory=list)
    growth_dirs: dict[int, Path] = field(default_factory=dict)  # seed → run dir (the run itself included)
    jobs: list[BaselineJob] = field(default_factory=list)


def refuse_link(path: Path) -> None:
    """A sibling run is trained, retrained and deleted by compare: never through a link to elsewhere."""
    if path.is_symlink():
        raise UserError(f"{path}: a sibling run that is a link; tfctl writes only its own directories there")


def plan_siblings(
    run_dir: Path,
    recipe: Recipe,
    data_dir: Path,
    stages: list[StagePlan],
    baselines: list[str],
    budgets: list[int],
    seeds: int | None,
    retrain: bool,
) -> Siblings:
    """What to train: the growth run's missing seeds, then every baseline run (each size, each seed)."""
    count = seeds or recipe.seeds
    out = Siblings()
    for seed in seed_values(recipe, count):
        path = out.growth_dirs[seed] = growth_seed_dir(run_dir, recipe, seed)
        if path != run_dir:
            refuse_link(path)
            out.tasks.append(
                Task(path.name, train_growth_seed, (growth_seed_recipe(recipe, run_dir, seed), path))
            )
    for section in select_baselines(recipe, baselines):
        section_seeds = seed_values(recipe, section.seeds or count)
        for budget in budgets if budgets and section.kind == "scratch" else [None]:
            for job in plan_jobs(run_dir, recipe, section, budget, stages, section_seeds):
                refuse_link(job.directory)
                out.jobs.append(job)
                out.tasks.append(Task(job.name, train_baseline, (job, recipe, data_dir, retrain)))
    return out


def summary_of(path: Path, seed: int | None, stages: list[str] | None) -> RunSummary | None:
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


def growth_group(siblings: Siblings, run_dir: Path, main: RunSummary, stages: list[str]) -> RunGroup:
    runs = [summary_of(path, seed, stages) for seed, path in siblings.growth_dirs.items()]
    runs = [r for r in runs if r is not None] or [main]
    return RunGroup(label=run_dir.name, kind="growth", runs=runs)


def baseline_groups(siblings: Siblings, main: RunSummary) -> list[RunGroup]:
    """One group per baseline size (its seeds together), in plan order; each run checked comparable."""
    groups: dict[str, RunGroup] = {}
    for job in siblings.jobs:  # a planned size with no finished run yet still has its (empty) group
        kind = (
            job.section.kind
            if job.section.family == "transformer"
            else f"{job.section.kind}-{job.section.family}"
        )
        group = groups.setdefault(job.group, RunGroup(job.group, kind, [], job.family, job.plans[-1].params))
        run = summary_of(job.directory, job.seed, [p.name for p in job.plans])
        if run is not None:
            check_comparable(main, run)
            group.runs.append(run)
    return list(groups.values())


def earlier_groups(run_dir: Path, main: RunSummary, known: list[Path]) -> list[RunGroup]:
    """The run's other baseline siblings trained by an earlier compare (another kind, budget or seed count),
    so that one report holds every baseline and `--baseline net2net` does not hide the scratch ones."""
    groups: dict[str, RunGroup] = {}
    known = {path.resolve() for path in known}
    for path in sorted(run_dir.parent.glob(f"{run_dir.name}.baseline-*")):
        if path.resolve() in known or not (path / BASELINE_FILE).is_file():
            continue
        try:
            recorded = json.loads((path / BASELINE_FILE).read_text())
            source = recorded.get("source_run")
            if source is None or Path(source).resolve() != run_dir.resolve():
                continue
            planned = [s.get("name") for s in recorded.get("stages", []) if isinstance(s, dict)]
            run = summary_of(path, recorded.get("seed"), planned or None)
            if run is None:
                continue
            check_comparable(main, run)
        except (UserError, ValueError, OSError, AttributeError):
            continue  # unfinished, damaged or trained on other data: not part of this report
        label = path.name.removeprefix(f"{run_dir.name}.").split(".seed")[0]  # as BaselineJob.group
        group = groups.setdefault(label, RunGroup(label, run.kind, [], recorded.get("family")))
        group.runs.append(run)
    return list(groups.values())


def with_group(run: RunSummary) -> RunGroup:
    """A `--with` run and its finished seed siblings (`<run>.seed<S>`, as `--seeds` trains them) as one group."""
    runs = [run]
    for path in sorted(run.path.parent.glob(f"{run.path.name}.seed*")):
        seed = path.name.rsplit(".seed", 1)[1]
        sibling = summary_of(path, int(seed), run.stages) if seed.isdigit() else None
        if sibling is not None:
            runs.append(sibling)
    if run.seed is None:
        recorded = RunDir(run.path).recipe
        run.seed = yaml.safe_load(recorded.read_text()).get("seed") if recorded.is_file() else None
    return RunGroup(label=run.name, kind=run.kind, runs=runs)
