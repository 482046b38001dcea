"""`tfctl compare RUN`: the growth run against Transformer baselines (trained once, then reused)."""

import json
from pathlib import Path

import typer

from tfctl.cli.options import JSON_OPTION, VERBOSE_OPTION

SEEDS_WITHOUT_YES = 10  # more seeds than this are sibling runs enough to ask first

EPILOG = """Examples:

  tfctl compare runs/tiny                              # train (or reuse) the recipe's baselines, report

  tfctl compare runs/tiny --baseline net2net           # against a Transformer grown Net2Net-style instead

  tfctl compare runs/tiny --tokens 2m --tokens 4m      # scratch baselines at other budgets: runs/tiny.baseline-scratch-2m, ...

  tfctl compare runs/tiny --with runs/tiny-preserve --json    # existing runs only, no training

  OMP_NUM_THREADS=1 tfctl compare runs/tiny --seeds 3 -j 2 # 3 seeds of everything, 2 trainings at a time
  tfctl compare runs/tiny --tasks my_mc --include-path my_tasks/   # + a downstream table (lm-eval tasks)

Writes runs/tiny/compare/report.md, report.json and ppl_vs_flops.png, and a `compare` run in the W&B group.
"""


def compare(
    run: Path = typer.Argument(..., help="The growth run directory (runs/<name>)."),
    baseline: list[str] = typer.Option(
        [],
        "--baseline",
        "-b",
        metavar="NAME",
        help="Baseline(s) to train or reuse: a name from the recipe's `baseline` "
        "section, or `scratch` / `net2net`. Default: all of the recipe's.",
    ),
    tokens: list[str] = typer.Option(
        [],
        "--tokens",
        metavar="BUDGET",
        help="Token budget(s) of the scratch baselines instead of their sections' `tokens`/`flops` "
        "(`2m`, `30b`); each budget is its own sibling run.",
    ),
    with_runs: list[Path] = typer.Option(
        [],
        "--with",
        metavar="RUN",
        help="Compare with existing run directories (no training unless --baseline is given too).",
    ),
    target: list[float] = typer.Option(
        [], "--target", metavar="PPL", help="Extra perplexity targets for the FLOPs-to-reach table."
    ),
    seeds: int | None = typer.Option(
        None,
        "--seeds",
        min=1,
        metavar="N",
        help="Train the growth run and each baseline with N seeds (sibling runs <run>.seed<S>, ...); "
        "the report gives mean ± std. Default: the recipe's `seeds`.",
    ),
    jobs: int = typer.Option(
        1,
        "--jobs",
        "-j",
        min=1,
        metavar="N",
        help="Trainings at a time (separate processes; on CPU give each one thread: OMP_NUM_THREADS=1).",
    ),
    retrain: bool = typer.Option(False, "--retrain", help="Replace a baseline trained with other settings."),
    yes: bool = typer.Option(
        False, "--yes", help=f"Start more than {SEEDS_WITHOUT_YES} seeds (the refusal states the cost)."
    ),
    tasks: str = typer.Option(
        None,
        "--tasks",
        help="Also evaluate every stage and baseline on these lm-eval tasks (comma-separated).",
    ),
    include_path: Path = typer.Option(
        None,
        "--include-path",
        help="A directory of lm-eval task YAMLs (e.g. local data, no network). A task YAML can run Python code (lm-eval's `!function`): use only task files you trust.",
    ),
    limit: int = typer.Option(None, "--limit", min=1, help="At most this many examples per task."),
    json_output: bool = JSON_OPTION,
    verbose: bool = VERBOSE_OPTION,
) -> None:
    """Train (or reuse) the baseline Transformers and report perplexity against training FLOPs."""
    import contextlib
    import sys

    from tfctl.compare.runs import finished_run_state

    for path in (run, *with_runs):
        finished_run_state(path)  # a wrong run directory is refused before torch loads
    if seeds is not None and seeds > SEEDS_WITHOUT_YES and not yes:
        from tfctl.errors import UserError

        raise UserError(f"--seeds {seeds}: {seeds_cost(run, seeds)}; add --yes to start them")
    # with --json, stdout carries the report only: progress goes to stderr
    redirect = contextlib.redirect_stdout(sys.stderr) if json_output else contextlib.nullcontext()
    downstream = _downstream_tasks(tasks, include_path) if tasks else None  # fails before any training
    from tfctl.compare import compare_run
    from tfctl.tracking.live import RunDisplay

    with redirect:
        display = RunDisplay(interactive=False if json_output else None, verbose=verbose)
        report = compare_run(
            run,
            baseline,
            tokens,
            with_runs,
            target,
            retrain=retrain,
            say=display.print,
            display=display,
            seeds=seeds,
            jobs=jobs,
        )
        if downstream:
            from tfctl.downstream.compare_table import add_downstream

            display.print(f"downstream: {', '.join(downstream[0])} on {len(report['runs'])} run(s)")
            add_downstream(run, report, *downstream, limit=limit)
    if json_output:
        print(json.dumps(report, indent=2))
        return
    from tfctl.cli.render import print_report

    print_report(report)
    if downstream:
        from tfctl.downstream.compare_table import to_markdown

        typer.echo(to_markdown(report["downstream"]))
    typer.echo(f"report: {run / 'compare' / 'report.md'}  (and report.json, ppl_vs_flops.png)")


def seeds_cost(run: Path, seeds: int) -> str:
    """What `--seeds N` starts, in `tfctl plan`'s numbers: sibling runs, FLOPs, and time where measured."""
    from tfctl.recipe import load_recipe, plan_recipe
    from tfctl.run.history import stage_times
    from tfctl.run.layout import RunDir

    plan = plan_recipe(load_recipe(RunDir(run).recipe), times=stage_times(RunDir(run)))
    runs = [plan.stages] + [[b] for b in plan.baselines]
    flops = (seeds - 1) * plan.total_flops + seeds * sum(b.flops for b in plan.baselines)
    cost = f"up to {seeds - 1 + seeds * len(plan.baselines)} sibling runs, {flops:.3g} training FLOPs"
    if plan.times:
        hours = sum(plan.times.seconds(s.flops) for group in runs for s in group) * seeds / 3600
        cost += f", about {hours:.3g} device-hours by `tfctl plan`'s estimate"
    return cost


def _downstream_tasks(tasks: str, include_path: Path | None):
    from tfctl.errors import UserError

    try:
        from tfctl.downstream.compare_table import prepare_tasks
    except ImportError as error:
        raise UserError(
            f"--tasks needs lm-evaluation-harness ({error.name}): pip install 'tfctl[eval]'"
        ) from None
    return prepare_tasks(tasks, include_path)
