"""Compare a growth run with Transformer baselines: train or reuse them, then report perplexity against cost.

`compare_run` is the command; `baselines` trains the sibling runs, `runs` reads a run's numbers, `curves`
finds the FLOPs to reach a perplexity, `report` and `plot` write the results.

`compare_run` (which trains, so imports torch) is loaded on first use (PEP 562), as `tfctl.model` does, so
`runs` checks a wrong run directory in a moment.
"""

__all__ = ["compare_run"]


def __getattr__(name: str):
    if name == "compare_run":
        from tfctl.compare.pipeline import compare_run

        return compare_run
    raise AttributeError(f"module 'tfctl.compare' has no attribute {name!r}")
