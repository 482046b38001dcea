"""`tfctl plan RECIPE`: the stage table, without training."""

import json
from pathlib import Path

import typer

from tfctl.cli.options import JSON_OPTION, SET_OPTION

EPILOG = """Examples:

  tfctl plan recipes/tiny.yaml

  tfctl plan recipes/openwebtext-124m-to-1.4b.yaml --json | jq '.stages[].params'

  tfctl plan recipes/shakespeare.yaml --set stages.2.tokens=20m

  tfctl plan recipes/tiny.yaml --run runs/tiny-preserve    # time estimates from that run's stages
"""


def plan(
    recipe: Path = typer.Argument(..., help="A growth recipe (YAML)."),
    overrides: list[str] = SET_OPTION,
    run_dir: Path | None = typer.Option(
        None,
        "--run",
        "-r",
        help="A run of this recipe whose finished stages give the time estimates (default: runs/<name>).",
    ),
    json_output: bool = JSON_OPTION,
) -> None:
    """Show each stage's parameter tokens, parameters, tokens, steps and FLOPs, and the baselines', without training.

    A baseline row is one size at one budget (`×N`: trained with N seeds); the last line sums the FLOPs of
    every run `tfctl compare` trains.

    est. time is a stage's fixed cost (start-up, evaluations, checkpoints, export, growth) plus its FLOPs at
    the rate training steps ran, both measured on the finished stages of an earlier run of the recipe
    (--run); it shows — until such a run has finished a stage.
    """
    from tfctl.cli.render import print_plan
    from tfctl.recipe import load_recipe, plan_recipe
    from tfctl.run.history import stage_times
    from tfctl.run.layout import RunDir

    loaded = load_recipe(recipe, overrides)
    earlier_run = RunDir(run_dir or Path("runs") / loaded.name)
    result = plan_recipe(loaded, times=stage_times(earlier_run))
    if json_output:
        print(json.dumps({"name": loaded.name, **result.to_dict()}, indent=2))
    else:
        print_plan(loaded.name, result, run_dir=str(earlier_run.root))
