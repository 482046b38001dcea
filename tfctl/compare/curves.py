"""Evaluation curves on the FLOPs axis, and the FLOPs at which a curve first reaches a perplexity.

A curve is a run's eval records in file order: cumulative training FLOPs (the run's axis, so a growth run's
later stages start where the earlier ones ended) against validation perplexity. Pure Python.
"""

from dataclasses import dataclass, field


@dataclass
class Curve:
    """Validation perplexity against cumulative training FLOPs (and tokens), in training order."""

    flops: list[float] = field(default_factory=list)
    ppl: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    growth_flops: list[float] = field(default_factory=list)  # where a new stage started from grown weights
    device_hours: list[float] = field(default_factory=list)  # cumulative, at each eval (start-up included)

    def to_dict(self) -> dict:
        return {
            "flops": self.flops,
            "ppl": self.ppl,
            "tokens": self.tokens,
            "stages": self.stages,
            "growth_flops": self.growth_flops,
            "device_hours": self.device_hours,
        }


def eval_curve(records: list[dict], stages: list[str] | None = None) -> Curve:
    """The curve of a run's metrics records (eval and growth kinds), limited to `stages` when given."""
    curve = Curve()
    for record in records:
        if stages is not None and record.get("stage") not in stages:
            continue
        if record.get("kind") == "eval" and isinstance(record.get("val_ppl"), int | float):
            curve.flops.append(float(record["flops"]))
            curve.ppl.append(float(record["val_ppl"]))
            curve.tokens.append(int(record.get("tokens", 0)))
            curve.stages.append(record.get("stage", ""))
            curve.device_hours.append(float(record.get("device_seconds", 0.0)) / 3600)
        elif record.get("kind") == "growth":
            curve.growth_flops.append(float(record["flops"]))
    return curve


def flops_to_reach(flops: list[float], ppl: list[float], target: float) -> float | None:
    """The cumulative FLOPs at which the curve first gets to perplexity ≤ `target`, or None if it never does.

    Between the last eval above the target and the first at or below it, FLOPs are interpolated linearly in
    perplexity (evals are a few hundred steps apart; the curve between them is unknown, a line is the least
    assumption). Reached at the first eval: that eval's FLOPs.
    """
    for i, value in enumerate(ppl):
        if value <= target:
            if i == 0:
                return flops[i]
            before, after = ppl[i - 1], value
            fraction = (before - target) / (before - after)
            return flops[i - 1] + fraction * (flops[i] - flops[i - 1])
    return None


def speedup(reference_flops: float | None, flops: float | None) -> float | None:
    """How many times fewer FLOPs `flops` needed than `reference_flops` (None when either never got there)."""
    if reference_flops is None or flops is None or flops <= 0:
        return None
    return reference_flops / flops
