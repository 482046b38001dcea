"""The `tfctl` command line: a thin typer layer, one module per command.

Heavy libraries (torch, deepspeed, wandb) are imported inside the command functions so that
`tfctl --help` answers instantly.
"""

import errno
import sys
from importlib.metadata import PackageNotFoundError, version

import typer
import typer.core
from typer._click import exceptions as click_errors  # typer vendors click: its exceptions are these

from tfctl.cli import (
    compare,
    data,
    eval,
    export,
    generate,
    grow,
    import_checkpoint,
    plan,
    submit,
    train,
)
from tfctl.errors import Interrupted, TrainingError, UserError

INTERRUPTED = "interrupted; re-run the same command to resume"
# what a path the user gave can do to any command (a full disk, a read-only or forbidden place, a file where a
# directory belongs): one line naming the path, exit 2; any other OSError is a bug and stays loud
PATH_ERRNOS = (
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.EFBIG,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.ENAMETOOLONG,
    errno.ELOOP,
)


def _flag_type(self, ctx):
    """typer's help labels every flag `<bool>`; a flag takes no value, so it gets no label."""
    return None if self.is_flag else _option_type(self, ctx)


_option_type = typer.core.TyperOption.display_type_rich
typer.core.TyperOption.display_type_rich = _flag_type

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
app.command(epilog=submit.EPILOG)(submit.submit)
app.command(epilog=grow.EPILOG)(grow.grow)
app.command(epilog=compare.EPILOG)(compare.compare)
app.add_typer(data.app, name="data")
app.command(name="eval", epilog=eval.EPILOG)(eval.eval_command)
app.command(epilog=generate.EPILOG)(generate.generate)
app.command(epilog=export.EPILOG)(export.export)
app.command(name="import", epilog=import_checkpoint.EPILOG)(import_checkpoint.import_checkpoint)


def tfctl_version() -> str:
    try:
        return version("tfctl")
    except PackageNotFoundError:
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        print(f"tfctl {tfctl_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    _version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Grow Tokenformer models stage by stage instead of retraining them."""


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user mistakes (and usage errors) become one line on stderr and exit code 2;
    Ctrl-C says how to resume and exits 130."""
    try:
        code = app(argv, standalone_mode=False)
    except click_errors.NoArgsIsHelpError as error:
        error.ctx.command.get_help(error.ctx)  # typer prints the rich help itself
        sys.exit(2)
    except click_errors.UsageError as error:
        command = error.ctx.command_path if error.ctx else "tfctl"
        print(f"error: {error.format_message()} (see `{command} --help`)", file=sys.stderr)
        sys.exit(error.exit_code)
    except click_errors.ClickException as error:
        print(f"error: {error.format_message()}", file=sys.stderr)
        sys.exit(error.exit_code)
    except typer.Abort:
        code = 130
    except Interrupted:
        code = 130
    except UserError as error:
        for line in str(error).splitlines() or [type(error).__name__]:
            print(f"error: {line}", file=sys.stderr)
        sys.exit(error.exit_code)
    except TrainingError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    except OSError as error:
        if error.errno not in PATH_ERRNOS:
            raise
        print(f"error: {error.filename or 'a file'}: {error.strerror}", file=sys.stderr)
        sys.exit(2)
    if code == 130:
        print(INTERRUPTED, file=sys.stderr)
    sys.exit(code if isinstance(code, int) else 0)
