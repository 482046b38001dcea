"""The bootstrap's intervals: seeded, censored draws unbounded, and 90 % intervals that cover the truth about
90 % of the time on synthetic seeds drawn from a known distribution."""

import math
from pathlib import Path

import numpy as np

from tfctl.compare.bootstrap import bootstrap, interval, resampled_means
from tfctl.compare.frontier import Point, frontier_flops, hull, read_ppl
from tfctl.compare.headline import headline
from tfctl.compare.runs import RunGroup, RunSummary


def test_resampling_is_seeded_and_per_run():
    a = resampled_means([[1.0, 2.0, 3.0], [5.0]], draws=100, seed=3)
    b = resampled_means([[1.0, 2.0, 3.0], [5.0]], draws=100, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert set(np.round(a[0] * 3)) <= set(range(3, 10)) and np.all(a[1] == 5.0)  # sums of 3 picks; one seed
    assert 1.0 < a[0].mean() < 3.0 and a[0].std() > 0


def test_a_censored_end_is_unbounded():
    values = np.array([0.5] * 90 + [math.inf] * 10)
    assert interval(values) == [0.5, None]
    assert interval(np.array([-math.inf] * 10 + list(np.linspace(0, 1, 90))))[0] is None
    draws = bootstrap(lambda means: {"x": means[0]}, [[1.0, 1.0]], draws=50)
    assert interval(draws["x"]) == [1.0, 1.0]


FAMILY_FLOPS = (1e12, 3e12, 1e13, 3e13)


def true_loss(flops: float) -> float:
    """A convex, falling envelope in (log FLOPs, log ppl)."""
    x = math.log10(flops) - 12
    return 3.4 - 0.35 * x + 0.06 * x * x


def summary(name: str, flops: float, loss: float, seed: int) -> RunSummary:
    ppl = math.exp(loss)
    return RunSummary(
        name=name,
        path=Path("runs") / name,
        kind="scratch",
        stages=["s1"],
        val_loss=loss,
        val_ppl=ppl,
        params=int(flops / 1e9),
        tokens=100,
        flops=flops,
        device_hours=1.0,
        wall_hours=1.0,
        mfu=None,
        world_size=1,
        stage_ends=[{"stage": "s1", "flops": flops, "val_ppl": ppl, "device_hours": 1.0}],
        seed=seed,
    )


def test_the_90_percent_intervals_cover_the_truth():
    """Seeds drawn N(true loss, 0.04); the growth run sits at 0.8× the frontier's FLOPs for its perplexity and
    0.05 nats behind the reference. Over 150 experiments with 8 seeds a run, the intervals must cover the true
    frontier-FLOPs ratio and ppl gap in 78–97 % of them: a percentile bootstrap of 8 seeds covers ≈ 85 %; an
    interval of zero width or one that ignores a run's spread covers far less, an unbounded one 100 %."""
    rng = np.random.default_rng(20231207)
    sigma, seeds, experiments = 0.04, 8, 150
    growth_flops = 4e12
    true_points = [Point(f, math.exp(true_loss(f)), f"m{i}") for i, f in enumerate(FAMILY_FLOPS)]
    growth_loss = true_loss(growth_flops / 0.8)  # the frontier needs 5e12 for this perplexity
    true_ratio = growth_flops / frontier_flops(true_points, math.exp(growth_loss))
    reference_loss = growth_loss - 0.05
    true_gap = (math.exp(growth_loss - reference_loss) - 1) * 100
    true_iso = read_ppl(hull(true_points), growth_flops).value
    true_iso_gap = (math.exp(growth_loss) / true_iso - 1) * 100
    covered = {"frontier_flops_ratio": 0, "ppl_gap_pct": 0, "iso_flops_ppl_gap_pct": 0}
    for _ in range(experiments):

        def group(label, flops, loss):
            losses = rng.normal(loss, sigma, seeds)
            runs = [summary(f"{label}.{k}", flops, value, k) for k, value in enumerate(losses)]
            return RunGroup(label, "scratch", runs, "transformer")

        members = [group(p.label, p.flops, true_loss(p.flops)) for p in true_points]
        growth = group("growth", growth_flops, growth_loss)
        reference = group("reference", 3e13, reference_loss)
        h = headline(growth, reference, members)
        assert h["n_seeds"] == seeds
        for key, truth in (
            ("frontier_flops_ratio", true_ratio),
            ("ppl_gap_pct", true_gap),
            ("iso_flops_ppl_gap_pct", true_iso_gap),
        ):
            low, high = h[f"{key}_ci"]
            covered[key] += (low is None or low <= truth) and (high is None or truth <= high)
    for key, count in covered.items():
        assert 0.78 <= count / experiments <= 0.97, (key, count)
