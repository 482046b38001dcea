"""The `tfctl` command line: a thin typer layer, one module per command.

Heavy libraries (torch, deepspeed, wandb) are imported inside the command functions so that
`tfctl --help` answers instantly.
"""

import sys

import typer

from tfctl.cli import compare, data, eval, export, generate, grow, import_checkpoint, plan, train
from tfctl.errors import TrainingError, UserError

app = typer.Typer(
    name="tfctl",
    help="Grow Tokenformer models stage by stage instead of retraining them.\n\n"
    "Typical session:  tfctl plan recipes/tiny.yaml  →  tfctl train recipes/tiny.yaml  →  tfctl compare runs/tiny",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.command(epilog=train.EPILOG)(train.train)
app.command(epilog=plan.EPILOG)(plan.plan)
app.command(epilog=grow.EPILOG)(grow.grow)
app.command(epilog=compare.EPILOG)(compare.compare)
app.add_typer(data.app, name="data")
app.command(name="eval", epilog=eval.EPILOG)(eval.eval_command)
app.command(epilog=generate.EPILOG)(generate.generate)
app.command(epilog=export.EPILOG)(export.export)
app.command(name="import", epilog=import_checkpoint.EPILOG)(import_checkpoint.import_checkpoint)


def main() -> None:
    """Console entry point: user mistakes become one line on stderr and exit code 2."""
    try:
        app()
    except UserError as error:
        for line in str(error).splitlines() or [type(error).__name__]:
            print(f"error: {line}", file=sys.stderr)
        sys.exit(error.exit_code)
    except TrainingError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
