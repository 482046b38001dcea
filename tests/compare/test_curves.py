"""FLOPs to reach a perplexity, on synthetic curves."""

import pytest

from tfctl.compare.curves import eval_curve, flops_to_reach, speedup

FLOPS = [0.0, 10.0, 20.0, 30.0]
PPL = [500.0, 100.0, 50.0, 40.0]


def test_reached_between_evals_is_interpolated():
    assert flops_to_reach(FLOPS, PPL, 75.0) == pytest.approx(15.0)
    assert flops_to_reach(FLOPS, PPL, 300.0) == pytest.approx(5.0)


def test_reached_exactly_at_an_eval():
    assert flops_to_reach(FLOPS, PPL, 50.0) == pytest.approx(20.0)


def test_never_reached():
    assert flops_to_reach(FLOPS, PPL, 39.9) is None
    assert flops_to_reach([], [], 10.0) is None


def test_reached_at_the_first_eval():
    assert flops_to_reach([5.0, 10.0], [30.0, 20.0], 40.0) == 5.0


def test_first_crossing_counts_on_a_non_monotone_curve():
    # a growth run whose new stage starts worse (paper init): the first crossing is what it cost
    assert flops_to_reach([0, 10, 10, 20], [100, 50, 80, 40], 60) == pytest.approx(0 + 10 * 40 / 50)


def test_speedup():
    assert speedup(300.0, 100.0) == 3.0
    assert speedup(None, 100.0) is None
    assert speedup(300.0, None) is None


def test_eval_curve_from_records():
    records = [
        {"kind": "eval", "stage": "s1", "step": 0, "tokens": 0, "flops": 0.0, "val_ppl": 500.0},
        {"kind": "train", "stage": "s1", "step": 1, "tokens": 8, "flops": 1.0, "loss": 6.0},
        {"kind": "eval", "stage": "s1", "step": 10, "tokens": 80, "flops": 10.0, "val_ppl": 90.0},
        {"kind": "growth", "stage": "s2", "step": 0, "tokens": 80, "flops": 10.0},
        {"kind": "eval", "stage": "s2", "step": 0, "tokens": 80, "flops": 10.0, "val_ppl": 90.0},
        {"kind": "eval", "stage": "s3", "step": 0, "tokens": 99, "flops": 99.0, "val_ppl": 1.0},
    ]
    curve = eval_curve(records, stages=["s1", "s2"])
    assert curve.flops == [0.0, 10.0, 10.0]
    assert curve.ppl == [500.0, 90.0, 90.0]
    assert curve.growth_flops == [10.0]
