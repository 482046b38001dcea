"""`tfctl compare RUN`: the growth run against Transformer baselines (trained once, then reused)."""

import json
from pathlib import Path

import typer

from tfctl.cli.options import JSON_OPTION

EPILOG = """Examples:

  tfctl compare runs/tiny                              # train (or reuse) the recipe's baselines, report

  tfctl compare runs/tiny --baseline net2net           # against a Transformer grown Net2Net-style instead

  tfctl compare runs/tiny --tokens 2m --tokens 4m      # scratch baselines at other budgets: runs/tiny.baseline-scratch-2m, ...

  tfctl compare runs/tiny --with runs/tiny-paper --json    # existing runs only, no training

  OMP_NUM_THREADS=1 tfctl compare runs/tiny --seeds 3 -j 2 # 3 seeds of everything, 2 trainings at a time

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
        help="Token budget(s) of the scratch baselines instead of the growth run's "
        "total (`2m`, `30b`); each budget is its own sibling run.",
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
    json_output: bool = JSON_OPTION,
) -> None:
    """Train (or reuse) the baseline Transformers and report perplexity against training FLOPs."""
    import contextlib
    import sys

    from tfctl.compare import compare_run

    say = (lambda line: print(line, file=sys.stderr)) if json_output else typer.echo
    # with --json, stdout carries the report only: the workers' output goes to stderr
    redirect = contextlib.redirect_stdout(sys.stderr) if json_output else contextlib.nullcontext()
    with redirect:
        report = compare_run(
            run, baseline, tokens, with_runs, target, retrain=retrain, say=say, seeds=seeds, jobs=jobs
        )
    if json_output:
        print(json.dumps(report, indent=2))
        return
    from tfctl.compare.report import print_report

    print_report(report)
    typer.echo(f"report: {run / 'compare' / 'report.md'}  (and report.json, ppl_vs_flops.png)")
