"""`tfctl grow SOURCE --to SIZE`: grow a trained Tokenformer."""

from tfctl.errors import UserError

EPILOG = "Example:  tfctl grow runs/tiny/stages/s1/final --to 2m -o grown/ --json"


def grow() -> None:
    """Grow a trained Tokenformer by appending parameter tokens (and optionally layers)."""
    raise UserError("`tfctl grow` is not built yet")
