"""The from-scratch frontier: interpolated in log-FLOPs between finished runs, None outside, never extrapolated."""

import math

import pytest

from tfctl.compare.frontier import Point, frontier_flops, pareto

FAMILY = [Point(1e12, 40.0, "s1"), Point(4e12, 30.0, "s2"), Point(16e12, 25.0, "s3")]


def test_in_range_is_interpolated_in_log_flops_against_log_ppl():
    ppl = 35.0
    fraction = (math.log(40) - math.log(ppl)) / (math.log(40) - math.log(30))
    expected = math.exp(math.log(1e12) + fraction * math.log(4))
    assert frontier_flops(FAMILY, ppl) == pytest.approx(expected)
    assert 1e12 < frontier_flops(FAMILY, ppl) < 4e12


def test_a_member_s_own_perplexity_costs_its_flops():
    assert frontier_flops(FAMILY, 30.0) == 4e12
    assert frontier_flops(FAMILY, 25.0) == 16e12


def test_out_of_range_is_none():
    assert frontier_flops(FAMILY, 20.0) is None  # better than the best member: would be extrapolation
    assert frontier_flops(FAMILY, 50.0) is None  # worse than the cheapest member
    assert frontier_flops([Point(1e12, 40.0)], 41.0) is None  # one point has no range
    assert frontier_flops([], 30.0) is None


def test_a_dominated_member_is_not_on_the_frontier():
    worse = [*FAMILY, Point(8e12, 33.0, "overtrained-small")]  # dearer than s2 and worse
    assert [p.label for p in pareto(worse)] == ["s1", "s2", "s3"]
    assert frontier_flops(worse, 28.0) == pytest.approx(frontier_flops(FAMILY, 28.0))
