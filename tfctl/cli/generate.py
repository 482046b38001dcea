"""`tfctl generate MODEL --prompt ...`: sample text from an exported model."""

from tfctl.errors import UserError

EPILOG = "Example:  tfctl generate runs/tiny/stages/s2/final --prompt 'To be, or not'"


def generate() -> None:
    """Sample text from a model directory."""
    raise UserError("`tfctl generate` is not built yet")
