"""`tfctl data prepare|info`: tokenized datasets."""

import typer

from tfctl.errors import UserError

app = typer.Typer(help="Prepare and inspect tokenized datasets.", no_args_is_help=True)


@app.command()
def prepare() -> None:
    """Tokenize a corpus into train/val token files."""
    raise UserError("`tfctl data prepare` is not built yet")


@app.command()
def info() -> None:
    """Describe a prepared dataset directory."""
    raise UserError("`tfctl data info` is not built yet")
