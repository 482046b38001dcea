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

    loaded = load_recipe(recipe, overrides)
    result = plan_recipe(loaded)
    if json_output:
        print(json.dumps({"name": loaded.name, **result.to_dict()}, indent=2))
    else:
        print_plan(loaded.name, result, run_dir=f"runs/{loaded.name}")
