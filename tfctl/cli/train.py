"""`tfctl train RECIPE`: run every stage of a growth recipe."""

import contextlib
import json
import sys
from pathlib import Path

import typer

from tfctl.cli.options import JSON_OPTION, SET_OPTION, VERBOSE_OPTION

EPILOG = """Examples:

  tfctl train recipes/tiny.yaml                      # runs/tiny, 3 stages, about a minute on 2 CPU cores

  tfctl train recipes/shakespeare.yaml --set stages.1.tokens=4m --set launch.nproc_per_node=2

  tfctl train recipes/tiny.yaml                      # again: finished stages are skipped, an interrupted one resumes

  tfctl train recipes/tiny.yaml --set stages.2.init=preserve -o runs/tiny-preserve    # s3 grown exactly

  tfctl train recipes/tiny.yaml --set stages.2.tokens=800k --force s3    # retrain s3 (stages.2) in runs/tiny

On a terminal each stage shows a live bar (loss, tokens, tok/s, MFU, elapsed, ETA); piped, a line every tenth
of a stage. Each stage's worker.log holds the workers' full output.
"""


def train(
    recipe: Path = typer.Argument(..., help="A growth recipe (YAML)."),
    overrides: list[str] = SET_OPTION,
    output: Path = typer.Option(None, "--output", "-o", help="Run directory (default: runs/<recipe name>)."),
    force: str = typer.Option(
        None, "--force", metavar="STAGE", help="Retrain from STAGE on: drops its (and later stages') results."
    ),
    json_output: bool = JSON_OPTION,
    verbose: bool = VERBOSE_OPTION,
) -> None:
    """Train every stage of a growth recipe, growing the model between stages, resuming what an earlier call left."""
    from tfctl.recipe import load_recipe
    from tfctl.run.state import checked_run_dir

    loaded = load_recipe(recipe, overrides)  # every user error in the recipe surfaces here, in a moment
    output = checked_run_dir(output, loaded.name)  # and in -o's state.json
    from tfctl.run.orchestrate import train_recipe  # torch, deepspeed launch, data: only for a valid recipe
    from tfctl.tracking.live import RunDisplay

    if not json_output:
        display = RunDisplay(verbose=verbose)
        train_recipe(loaded, output, force=force, say=display.print, display=display)
        return
    with contextlib.redirect_stdout(sys.stderr):  # progress goes to stderr; stdout is the JSON
        display = RunDisplay(interactive=False, verbose=verbose)
        results = train_recipe(loaded, output, force=force, say=print, display=display)
    print(json.dumps({"stages": results}, indent=2))
