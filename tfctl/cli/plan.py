"""`tfctl plan RECIPE`: the stage table, without training."""

from tfctl.errors import UserError

EPILOG = "Example:  tfctl plan recipes/openwebtext-124m-to-1.4b.yaml --json"


def plan() -> None:
    """Show each stage's parameters, tokens, steps and FLOPs without training."""
    raise UserError("`tfctl plan` is not built yet")
