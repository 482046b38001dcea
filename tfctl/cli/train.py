"""`tfctl train RECIPE`: run every stage of a growth recipe."""

from tfctl.errors import UserError

EPILOG = "Examples:  tfctl train recipes/tiny.yaml   |   tfctl train recipes/shakespeare.yaml --set stages.1.tokens=4m"


def train() -> None:
    """Train every stage of a growth recipe, growing the model between stages."""
    raise UserError("`tfctl train` is not built yet")
