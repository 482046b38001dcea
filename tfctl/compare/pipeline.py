"""`tfctl compare RUN`: baselines (trained or reused) + the run's metrics → report.md/json, the figure, W&B."""

import json
import shlex
from pathlib import Path

from tfctl.compare.baselines import plan_job, select_baselines, train_baseline
from tfctl.compare.plot import plot_ppl_vs_flops
from tfctl.compare.report import build_report, to_markdown
from tfctl.compare.runs import BASELINE_FILE, RunSummary, check_comparable, summarize_run
from tfctl.errors import UserError
from tfctl.files import atomic_write_json, atomic_write_text
from tfctl.model.sizes import parse_count
from tfctl.model_dir import load_model_config
from tfctl.recipe import load_recipe
from tfctl.run.layout import RunDir
from tfctl.run.state import RunState
from tfctl.tracking.wandb_compare import log_comparison
from tfctl.tracking.wandb_run import resolve_mode


def _growth_setup(run_dir: Path, main: RunSummary):
    """The growth run's recipe, its prepared data and its finished stages' model configs."""

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
    configs = [load_model_config(dirs.final(stage)) for stage in main.stages]
    return recipe, Path(data_dir), configs


def earlier_baselines(run_dir: Path, main: RunSummary, known: list[Path]) -> list[RunSummary]:
    """The run's other finished baseline siblings (trained by an earlier compare: another kind or budget), so
    that one report holds every baseline and `--baseline net2net` does not hide the scratch one."""
    found = []
    for path in sorted(run_dir.parent.glob(f"{run_dir.name}.baseline-*")):
        if any(path.resolve() == other.resolve() for other in known) or not (path / BASELINE_FILE).is_file():
            continue
        try:
            source = json.loads((path / BASELINE_FILE).read_text()).get("source_run")
            if source is None or Path(source).resolve() != run_dir.resolve():
                continue
            summary = summarize_run(path)
            check_comparable(main, summary)
        except (UserError, ValueError, OSError):
            continue  # unfinished, or trained on other data: not part of this report
        found.append(summary)
    return found


def _budgets(tokens: list[str]) -> list[int]:

    budgets = []
    for value in tokens:
        try:
            budgets.append(parse_count(value))
        except ValueError:
            raise UserError(f"--tokens {value}: not a token count like 2m or 30b") from None
    return budgets


def reproduce_commands(
    run_dir: Path, baselines: list[str], tokens: list[str], with_runs: list[Path], targets: list[float]
) -> list[str]:
    command = ["tfctl", "compare", str(run_dir)]
    for name in baselines:
        command += ["--baseline", name]
    for value in tokens:
        command += ["--tokens", value]
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
) -> dict:
    """Train or reuse the baselines, compare, write RUN/compare/{report.md,report.json,ppl_vs_flops.png}.

    Without --with, the recipe's baselines (or `baselines`) are trained; with --with and no `baselines`,
    only the given runs are compared. Returns the report dict.
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

    trained: list[RunSummary] = []
    recipe = None
    if baselines or tokens or not with_runs:
        recipe, data_dir, configs = _growth_setup(run_dir, main)
        for section in select_baselines(recipe, baselines):
            for budget in budgets if budgets and section.kind == "scratch" else [None]:
                job = plan_job(run_dir, recipe, section, budget, configs, main.tokens)
                path = train_baseline(job, recipe, data_dir, retrain=retrain, say=say, display=display)
                trained.append(summarize_run(path))
        for baseline in trained:
            check_comparable(main, baseline)

    out = RunDir(run_dir).compare
    out.mkdir(parents=True, exist_ok=True)
    earlier = earlier_baselines(run_dir, main, [r.path for r in trained + others])
    for baseline in earlier:
        say(f"[{baseline.name}] trained by an earlier compare: in the report too")
    runs = trained + others + earlier
    report = build_report(
        main, runs, targets, reproduce_commands(run_dir, baselines, tokens, with_runs, targets)
    )
    figure = out / "ppl_vs_flops.png"
    drawn = plot_ppl_vs_flops([main, *runs], figure, title=f"{main.name}: perplexity vs FLOPs")
    report["figure"] = {"path": figure.name, **drawn}
    if wandb:
        report["wandb"] = _log_wandb(report, figure, recipe, run_dir)
        if display is not None:
            display.wandb_notice(report["wandb"], [run_dir, *(r.path for r in trained)])
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", to_markdown(report, figure.name))
    return report


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
        group=w.group or run_dir.name,
        directory=run_dir,
        tags=list(w.tags),
    )
