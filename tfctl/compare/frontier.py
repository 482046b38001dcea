"""The from-scratch frontier: the least training FLOPs at which a family of models trained from scratch (one
per size, each to the end of its schedule) reaches a perplexity. Pure Python.

Only finished runs' final evals are points (their LR has decayed; a mid-schedule eval is not where a run of
that budget ends). Between two neighbouring points of the frontier, log-FLOPs is interpolated linearly in
log-perplexity (the loss); outside the family's range the answer is None: never extrapolated.
"""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    flops: float
    ppl: float
    label: str = ""


def pareto(points: list[Point]) -> list[Point]:
    """The points no cheaper point beats, by increasing FLOPs (and so decreasing perplexity)."""
    front: list[Point] = []
    for point in sorted(points, key=lambda p: (p.flops, p.ppl)):
        if not front or point.ppl < front[-1].ppl:
            front.append(point)
    return front


def frontier_flops(points: list[Point], ppl: float) -> float | None:
    """The FLOPs the frontier of `points` needs to reach `ppl`; None when `ppl` is outside its range (better
    than its best point, or worse than its cheapest)."""
    front = pareto([p for p in points if p.flops > 0 and p.ppl > 0])
    for point in front:
        if math.isclose(point.ppl, ppl, rel_tol=1e-12):
            return point.flops
    for cheaper, dearer in zip(front, front[1:], strict=False):
        if dearer.ppl < ppl < cheaper.ppl:
            fraction = (math.log(cheaper.ppl) - math.log(ppl)) / (
                math.log(cheaper.ppl) - math.log(dearer.ppl)
            )
            return math.exp(
                math.log(cheaper.flops) + fraction * (math.log(dearer.flops) - math.log(cheaper.flops))
            )
    return None
