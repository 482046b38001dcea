"""`tfctl plan RECIPE`: the stage table, without training."""

import json
from pathlib import Path

import typer

from tfctl.cli.options import JSON_OPTION, SET_OPTION

EPILOG = """Examples:

  tfctl plan recipes/tiny.yaml

  tfctl plan recipes/openwebtext-124m-to-1.4b.yaml --json | jq '.stages[].params'

  tfctl plan recipes/shakespeare.yaml --set stages.2.tokens=20m
"""


def plan(
    recipe: Path = typer.Argument(..., help="A growth recipe (YAML)."),
    overrides: list[str] = SET_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Show each stage's parameter tokens, parameters, tokens, steps and FLOPs, and the baseline's, without training."""
    from tfctl.cli.render import print_plan
    from tfctl.recipe import load_recipe, plan_recipe
    from tfctl.run.layout import RunDir
    from tfctl.tracking.metrics_file import achieved_flops_per_second

    loaded = load_recipe(recipe, overrides)
    earlier_run = RunDir(Path("runs") / loaded.name)  # its achieved FLOP/s give the time estimates
    result = plan_recipe(loaded, flops_per_second=achieved_flops_per_second(earlier_run.metrics))
    if json_output:
        print(json.dumps({"name": loaded.name, **result.to_dict()}, indent=2))
    else:
        print_plan(loaded.name, result, run_dir=f"runs/{loaded.name}")
