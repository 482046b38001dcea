"""Options shared by several commands."""

import typer

SET_OPTION = typer.Option(
    [],
    "--set",
    "-s",
    metavar="KEY=VALUE",
    help="Override a recipe field before validation: --set stages.1.tokens=4m --set train.zero_stage=2",
)
JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object on stdout instead of tables.")
VERBOSE_OPTION = typer.Option(
    False,
    "--verbose",
    "-v",
    help="Also show the workers' own output (DeepSpeed, the launcher); it always goes to each stage's worker.log.",
)
