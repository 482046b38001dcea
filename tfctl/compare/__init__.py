"""Compare a growth run with Transformer baselines: train or reuse them, then report perplexity against cost.

`compare_run` is the command; `baselines` trains the sibling runs, `runs` reads a run's numbers, `curves`
finds the FLOPs to reach a perplexity, `report` and `plot` write the results.
"""

from tfctl.compare.pipeline import compare_run

__all__ = ["compare_run"]
