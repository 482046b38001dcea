"""`tfctl eval MODEL`: validation loss and perplexity of an exported model."""

from tfctl.errors import UserError

EPILOG = "Example:  tfctl eval runs/tiny/stages/s2/final --text my.txt --json"


def eval_command() -> None:
    """Evaluate loss and perplexity of a model directory or run directory."""
    raise UserError("`tfctl eval` is not built yet")
