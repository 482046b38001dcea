"""Independent trainings of a comparison (seed siblings, baselines), one after the other or N at a time.

Each task trains one sibling run through the stage loop; with `jobs` > 1 they run in separate processes
(one worker each: set OMP_NUM_THREADS=1 on a CPU machine), so one failure never stops the others. Every
task is resumable: rerunning the command picks up what was cut short.
"""

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tfctl.errors import TrainingError, UserError
from tfctl.recipe import Recipe
from tfctl.run.orchestrate import train_recipe
from tfctl.tracking.live import RunDisplay


@dataclass
class Task:
    label: str
    fn: Callable  # a module-level function (pickled to a process when jobs > 1)
    args: tuple = field(default_factory=tuple)


def train_growth_seed(recipe: Recipe, run_dir: Path) -> None:
    """A seed sibling of the growth run (tfctl.compare.seeds.growth_seed_recipe), trained or resumed; every
    line it prints carries its run directory's name (the seed is in it)."""
    display = RunDisplay(interactive=False, tag=run_dir.name)  # compact lines: several runs share a terminal
    train_recipe(recipe, run_dir=run_dir, say=display.print, display=display)


def run_tasks(tasks: list[Task], jobs: int = 1, say=print) -> None:
    """Run every task; then raise the first user error, else one TrainingError naming every failure."""
    failures: list[tuple[str, Exception]] = []
    if jobs <= 1 or len(tasks) <= 1:
        for task in tasks:
            try:
                task.fn(*task.args)
            except (UserError, TrainingError) as error:
                failures.append((task.label, error))
    else:
        say(f"training {len(tasks)} runs, {jobs} at a time")
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = {pool.submit(task.fn, *task.args): task for task in tasks}
            for future in as_completed(futures):
                task = futures[future]
                try:
                    future.result()
                    say(f"[{task.label}] finished")
                except Exception as error:  # noqa: BLE001 — reported below, after the other tasks
                    failures.append((task.label, error))
                    say(f"[{task.label}] failed: {error}")
    for _, error in failures:
        if isinstance(error, UserError):
            raise error
    if failures:
        raise TrainingError("; ".join(f"{label}: {error}" for label, error in failures))
