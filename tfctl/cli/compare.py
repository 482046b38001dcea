"""`tfctl compare RUN`: the growth run against a from-scratch baseline."""

from tfctl.errors import UserError

EPILOG = "Example:  tfctl compare runs/tiny --json"


def compare() -> None:
    """Train (or reuse) the baseline Transformer and report perplexity against cost."""
    raise UserError("`tfctl compare` is not built yet")
