"""The from-scratch frontier: the least training FLOPs at which one architecture trained from scratch reaches a
perplexity, whatever the size and token budget. Pure Python.

Only finished runs' final evals are points (their LR has decayed; a mid-schedule eval is not where a run of
that budget ends). The frontier is the lower convex hull of the points in (log FLOPs, log perplexity), from
the cheapest point down to the best one: the compute-optimal envelope. A point above the hull (a dominated
size or budget) never changes it, and adding a point can only lower it. Along the hull log-FLOPs is
interpolated linearly in log-perplexity; outside the hull's range the answer is a bound, never extrapolated:
a perplexity worse than the cheapest point's needs at most that point's FLOPs, one better than the best
point's needs at least the best point's FLOPs.
"""

import math
from dataclasses import dataclass

AT_MOST, AT_LEAST = "<=", ">="  # a reading out of range: the true value is at most / at least `value`
# FLOPs budgets met in whole steps (`flops:` budgets, an iso-FLOP study) miss their target by a fraction of a
# step: FLOPs within this fraction of the hull's cheapest or dearest point are read at that point, not as a bound
FLOPS_TOLERANCE = 0.01


@dataclass(frozen=True)
class Point:
    flops: float
    ppl: float
    label: str = ""


@dataclass(frozen=True)
class Reading:
    """A number read off the frontier: exact (bound None) or a bound (AT_MOST / AT_LEAST) out of range."""

    value: float
    bound: str | None = None


def _cross(o: Point, a: Point, b: Point) -> float:
    """> 0 when o → a → b turns left (counter-clockwise) in (log FLOPs, log ppl)."""
    ox, oy = math.log(o.flops), math.log(o.ppl)
    return (math.log(a.flops) - ox) * (math.log(b.ppl) - oy) - (math.log(a.ppl) - oy) * (
        math.log(b.flops) - ox
    )


def hull(points: list[Point]) -> list[Point]:
    """The frontier's vertices by increasing FLOPs (and decreasing perplexity): the lower convex hull of
    (log FLOPs, log ppl) from the cheapest point (the best of the cheapest, on a tie) to the best point."""
    lower: list[Point] = []
    for point in sorted((p for p in points if p.flops > 0 and p.ppl > 0), key=lambda p: (p.flops, p.ppl)):
        if lower and point.flops == lower[-1].flops:
            continue  # same FLOPs, worse perplexity
        while len(lower) >= 2 and _cross(lower[-2], lower[-1], point) <= 0:
            lower.pop()
        lower.append(point)
    best = min(range(len(lower)), key=lambda i: (lower[i].ppl, i), default=-1)
    return lower[: best + 1]


def read_flops(front: list[Point], ppl: float) -> Reading | None:
    """The FLOPs the frontier `front` (hull vertices) needs to reach `ppl`; None without a vertex."""
    if not front:
        return None
    if ppl > front[0].ppl:
        return Reading(front[0].flops, AT_MOST)
    if ppl < front[-1].ppl:
        return Reading(front[-1].flops, AT_LEAST)
    for cheaper, dearer in zip(front, front[1:], strict=False):
        if dearer.ppl <= ppl <= cheaper.ppl:
            return Reading(_interpolate(cheaper.ppl, dearer.ppl, cheaper.flops, dearer.flops, ppl))
    return Reading(front[0].flops)  # one vertex, and ppl is its own


def read_ppl(front: list[Point], flops: float) -> Reading | None:
    """The frontier's perplexity at `flops` (iso-FLOP); None without a vertex. More FLOPs than the best
    point's reach at most its perplexity; fewer than the cheapest point's, at least the cheapest's (within
    FLOPS_TOLERANCE of either: that point's own perplexity, the same budget up to step rounding)."""
    if not front:
        return None
    if flops < front[0].flops:
        bound = None if flops >= front[0].flops * (1 - FLOPS_TOLERANCE) else AT_LEAST
        return Reading(front[0].ppl, bound)
    if flops > front[-1].flops:
        bound = None if flops <= front[-1].flops * (1 + FLOPS_TOLERANCE) else AT_MOST
        return Reading(front[-1].ppl, bound)
    for cheaper, dearer in zip(front, front[1:], strict=False):
        if cheaper.flops <= flops <= dearer.flops:
            return Reading(_interpolate(cheaper.flops, dearer.flops, cheaper.ppl, dearer.ppl, flops))
    return Reading(front[0].ppl)


def _interpolate(x0: float, x1: float, y0: float, y1: float, x: float) -> float:
    """y at x on the straight line through (x0, y0), (x1, y1), all in log space."""
    if x0 == x1:
        return y0
    fraction = (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
    return math.exp(math.log(y0) + fraction * (math.log(y1) - math.log(y0)))


def frontier_flops(points: list[Point], ppl: float) -> float | None:
    """The FLOPs the frontier of `points` needs to reach `ppl`; None outside its range."""
    reading = read_flops(hull(points), ppl)
    return reading.value if reading is not None and reading.bound is None else None
