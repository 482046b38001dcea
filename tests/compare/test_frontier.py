"""The from-scratch frontier: the lower convex hull in (log FLOPs, log ppl), interpolated along it, a bound
outside it, never extrapolated."""

import math
import random

import pytest

from tfctl.compare.frontier import (
    AT_LEAST,
    AT_MOST,
    Point,
    Reading,
    frontier_flops,
    hull,
    read_flops,
    read_ppl,
)

FAMILY = [Point(1e12, 40.0, "s1"), Point(4e12, 30.0, "s2"), Point(16e12, 25.0, "s3")]


def test_in_range_is_interpolated_in_log_flops_against_log_ppl():
    ppl = 35.0
    fraction = (math.log(40) - math.log(ppl)) / (math.log(40) - math.log(30))
    expected = math.exp(math.log(1e12) + fraction * math.log(4))
    assert frontier_flops(FAMILY, ppl) == pytest.approx(expected)
    assert 1e12 < frontier_flops(FAMILY, ppl) < 4e12


def test_a_member_s_own_perplexity_costs_its_flops():
    assert frontier_flops(FAMILY, 30.0) == pytest.approx(4e12)
    assert frontier_flops(FAMILY, 25.0) == pytest.approx(16e12)


def test_out_of_range_is_a_bound_never_an_extrapolation():
    front = hull(FAMILY)
    assert read_flops(front, 20.0) == (read_flops(front, 20.0).__class__(16e12, AT_LEAST))
    assert read_flops(front, 50.0).value == 1e12 and read_flops(front, 50.0).bound == AT_MOST
    assert frontier_flops(FAMILY, 20.0) is None and frontier_flops(FAMILY, 50.0) is None
    assert frontier_flops([Point(1e12, 40.0)], 41.0) is None  # one point has no range
    assert frontier_flops([], 30.0) is None and read_flops([], 30.0) is None


def test_iso_flops_perplexity_is_read_along_the_hull():
    front = hull(FAMILY)
    at = read_ppl(front, 2e12)
    assert at.bound is None and at.value == pytest.approx(math.exp((math.log(40) + math.log(30)) / 2))
    assert read_ppl(front, 32e12).value == 25.0 and read_ppl(front, 32e12).bound == AT_MOST
    assert read_ppl(front, 0.5e12).value == 40.0 and read_ppl(front, 0.5e12).bound == AT_LEAST


def test_a_budget_met_in_whole_steps_is_read_at_the_hull_end_it_targets():
    """An iso-FLOP study's runs miss C by a fraction of a step: 1.0001 C against a hull ending at C reads the
    end's perplexity, not a bound; 2 % beyond it is still a bound."""
    front = hull(FAMILY)
    end, start = front[-1], front[0]
    assert read_ppl(front, end.flops * 1.0001) == Reading(end.ppl)
    assert read_ppl(front, start.flops * 0.9999) == Reading(start.ppl)
    assert read_ppl(front, end.flops * 1.02).bound == AT_MOST
    assert read_ppl(front, start.flops * 0.98).bound == AT_LEAST


def test_a_dominated_member_is_not_on_the_frontier():
    worse = [*FAMILY, Point(8e12, 33.0, "overtrained-small")]  # dearer than s2 and worse
    assert [p.label for p in hull(worse)] == ["s1", "s2", "s3"]
    assert frontier_flops(worse, 28.0) == pytest.approx(frontier_flops(FAMILY, 28.0))


def test_the_issue_s_counterexample_is_convex_now():
    """A(1e12, 10), C(1e13, 5): ppl 8.08 needs 2.03e12; adding B(5e12, 9.99) used to make it 6.18e12."""
    a, b, c = Point(1e12, 10.0, "A"), Point(5e12, 9.99, "B"), Point(1e13, 5.0, "C")
    before = frontier_flops([a, c], 8.08)
    assert before == pytest.approx(2.03e12, rel=0.01)
    assert [p.label for p in hull([a, b, c])] == ["A", "C"]
    assert frontier_flops([a, b, c], 8.08) == pytest.approx(before)


def test_a_point_beyond_the_best_is_off_the_frontier():
    over = [
        *FAMILY,
        Point(64e12, 26.0, "too-big-for-its-budget"),
    ]  # dearer than s3, worse: not on the envelope
    assert [p.label for p in hull(over)] == ["s1", "s2", "s3"]


def random_family(rng: random.Random, n: int) -> list[Point]:
    return [Point(10 ** rng.uniform(11, 14), math.exp(rng.uniform(2.0, 4.0)), str(i)) for i in range(n)]


def flops_needed(points: list[Point], ppl: float) -> float | None:
    """The FLOPs needed as a number: exact, or the at-most bound (the true value is no larger)."""
    reading = read_flops(hull(points), ppl)
    if reading is None or reading.bound == AT_LEAST:
        return None
    return reading.value


def test_adding_a_run_never_raises_the_flops_needed():
    rng = random.Random(2023)
    for _ in range(400):
        family = random_family(rng, rng.randint(2, 6))
        grown = [*family, *random_family(rng, 1)]
        for _ in range(20):
            ppl = math.exp(rng.uniform(1.8, 4.2))
            before, after = flops_needed(family, ppl), flops_needed(grown, ppl)
            if before is not None:
                assert after is not None and after <= before * (1 + 1e-9), (family, grown, ppl)


def test_a_run_above_the_hull_changes_nothing():
    rng = random.Random(7)
    for _ in range(400):
        family = random_family(rng, rng.randint(2, 6))
        front = hull(family)
        if len(front) < 2:
            continue
        # a point above a hull segment (log-linear in between, then higher), within its FLOPs range
        i = rng.randrange(len(front) - 1)
        t = rng.random()
        flops = math.exp(math.log(front[i].flops) * (1 - t) + math.log(front[i + 1].flops) * t)
        on = read_ppl(front, flops).value
        above = Point(flops, on * math.exp(rng.uniform(1e-6, 1.0)), "above")
        assert hull([*family, above]) == front
