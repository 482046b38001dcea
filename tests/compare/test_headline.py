"""The headline on synthetic runs: finished runs only, final against final, seeds aggregated, the frontier."""

import math
import statistics
from pathlib import Path

import pytest

from tfctl.compare.curves import Curve
from tfctl.compare.frontier import Point, frontier_flops
from tfctl.compare.markdown import to_markdown
from tfctl.compare.report import build_report
from tfctl.compare.runs import RunGroup, RunSummary


def run(name, kind, flops, ppl, seed=None, complete=True, curve=None, hours=1.0, ends=None):
    curve = curve or Curve(
        flops=[0, flops / 2, flops], ppl=[300, ppl * 1.5, ppl], device_hours=[0, hours / 2, hours]
    )
    return RunSummary(
        name=name,
        path=Path("runs") / name,
        kind=kind,
        stages=["s1"],
        val_loss=math.log(ppl),
        val_ppl=ppl,
        params=1000,
        tokens=100,
        flops=flops,
        device_hours=hours,
        wall_hours=hours,
        mfu=None,
        world_size=1,
        curve=curve,
        stage_ends=ends or [{"stage": "s1", "flops": flops, "val_ppl": ppl, "device_hours": hours}],
        seed=seed,
        complete=complete,
    )


def test_a_mid_schedule_point_never_enters_the_headline():
    # the growth run's curve dips to 20 mid-schedule; its final (LR decayed) stage end is 40
    dip = Curve(flops=[0, 10, 20, 30], ppl=[300, 20, 35, 40], device_hours=[0, 0.1, 0.2, 0.3])
    growth = run("tiny", "growth", 30, 40.0, curve=dip)
    scratch = run("tiny.baseline-scratch", "scratch", 90, 42.0)
    better_but_unfinished = run("tiny.baseline-long", "scratch", 50, 10.0, complete=False)
    report = build_report(growth, [scratch, better_but_unfinished])
    head, unfinished = report["headline"]
    assert head["ppl_growth"] == pytest.approx(40.0) and head["ppl_reference"] == pytest.approx(42.0)
    assert head["ppl_gap_pct"] == pytest.approx((40 / 42 - 1) * 100)
    assert head["flops_ratio"] == pytest.approx(30 / 90)
    assert unfinished["n_seeds"] == 0 and "ppl_reference" not in unfinished  # never a headline
    assert "no finished pair" in unfinished["sentence"] and unfinished["verdict"] == "inconclusive"
    race = report["flops_to_reach"][0]
    assert race["flops"]["tiny"] is not None  # the mid-schedule race still sees the dip, labelled below
    assert "Mid-schedule" in to_markdown(report)


def test_seeds_are_averaged_in_loss_space_with_an_interval_on_each_number():
    growth_ppl, scratch_ppl = [40.0, 41.0, 39.5], [42.0, 42.5, 41.0]
    growth = RunGroup(
        "tiny",
        "growth",
        [run("tiny", "growth", 30, p, seed=s) for s, p in zip((1, 2, 3), growth_ppl, strict=False)],
    )
    scratch = RunGroup(
        "baseline-scratch",
        "scratch",
        [
            run(f"scratch{s}", "scratch", 90, p, seed=s, hours=2.0)
            for s, p in zip((1, 2, 3), scratch_ppl, strict=False)
        ],
    )
    (head,) = build_report(growth, [scratch])["headline"]
    assert head["n_seeds"] == 3 and head["seeds_growth"] == [1, 2, 3]
    geometric = math.exp(statistics.fmean(math.log(p) for p in growth_ppl))
    assert head["ppl_growth"] == pytest.approx(geometric)
    assert head["ppl_growth_median"] == pytest.approx(40.0)
    reference = math.exp(statistics.fmean(math.log(p) for p in scratch_ppl))
    assert head["ppl_gap_pct"] == pytest.approx((geometric / reference - 1) * 100)
    low, high = head["ppl_gap_pct_ci"]
    assert low <= head["ppl_gap_pct"] <= high < 0  # every resample of these seeds has growth ahead
    assert head["device_hours_ratio"] == pytest.approx(0.5)
    assert head["verdict"] == "saves compute"  # a third of the FLOPs, a gap whose interval is below 0
    assert head["frontier"] == [] and head["frontier_flops_ratio_ci"] is None


def test_unpaired_seeds_are_resampled_independently():
    growth = RunGroup(
        "tiny", "growth", [run("tiny", "growth", 30, 40, seed=1), run("t2", "growth", 30, 41, seed=2)]
    )
    scratch = RunGroup("scratch", "scratch", [run("b", "scratch", 90, 42, seed=1)])
    (head,) = build_report(growth, [scratch])["headline"]
    assert head["seeds_growth"] == [1, 2] and head["seeds_reference"] == [1]
    assert head["n_seeds"] == 1  # the fewest of any run: one seed of the reference, no interval
    assert head["ppl_growth"] == pytest.approx(math.sqrt(40 * 41))
    assert head["ppl_gap_pct_ci"] is None and head["verdict"] == "inconclusive"


def test_a_family_is_judged_by_its_largest_member_and_its_frontier():
    family = [
        RunGroup(
            f"baseline-scratch-{n}",
            "scratch",
            [run(f"tiny.baseline-scratch-{n}", "scratch", f, p)],
            "scratch",
        )
        for n, f, p in (("s1", 10.0, 60.0), ("s2", 40.0, 45.0), ("s3", 160.0, 35.0))
    ]
    family[2].runs[0].params = 5000  # the largest
    ends = [
        {"stage": "s1", "flops": 10.0, "val_ppl": 60.0, "device_hours": 0.1},
        {"stage": "s2", "flops": 30.0, "val_ppl": 44.0, "device_hours": 0.3},
    ]
    growth = run("tiny", "growth", 30.0, 44.0, ends=ends)
    report = build_report(growth, family)
    (head,) = report["headline"]
    assert head["against_label"] == "baseline-scratch-s3"
    assert head["family"] == ["baseline-scratch-s1", "baseline-scratch-s2", "baseline-scratch-s3"]
    points = [Point(10.0, 60.0), Point(40.0, 45.0), Point(160.0, 35.0)]
    assert head["frontier_flops"] == pytest.approx(frontier_flops(points, 44.0))
    assert head["frontier_flops_ratio"] == pytest.approx(30.0 / frontier_flops(points, 44.0))
    assert head["frontier_flops_ratio_bound"] is None
    assert [v["label"] for v in head["frontier"]] == head["family"]  # all three are hull vertices
    s1, s2 = report["stage_ends"]
    assert s1["frontier_flops_ratio"]["scratch"] == pytest.approx(1.0)  # the base is the s1 member's twin
    assert s2["frontier_flops_ratio"]["scratch"] == pytest.approx(head["frontier_flops_ratio"])
    out_of_range = build_report(run("tiny", "growth", 30.0, 30.0), family)["headline"][0]
    # better than the best member: not extrapolated, a bound (it needs at least the best member's FLOPs)
    assert out_of_range["frontier_flops_ratio"] == pytest.approx(30.0 / 160.0)
    assert out_of_range["frontier_flops_ratio_bound"] == "<="
    assert "≤ 0.19× the FLOPs the from-scratch frontier needs" in out_of_range["sentence"]
    iso = math.exp(math.log(60) + math.log(3) / math.log(4) * (math.log(45) - math.log(60)))
    assert out_of_range["iso_flops_ppl_bound"] is None  # 30 FLOPs is inside the hull: read along it
    assert out_of_range["iso_flops_ppl"] == pytest.approx(iso)
    assert out_of_range["iso_flops_ppl_gap_pct"] == pytest.approx((30 / iso - 1) * 100)


def test_other_growth_runs_are_variants_against_the_frontier_not_references():
    family = [
        RunGroup(
            f"baseline-scratch-{n}",
            "scratch",
            [run(f"tiny.baseline-scratch-{n}", "scratch", f, p)],
            "scratch",
            f,
        )
        for n, f, p in (("s1", 10.0, 60.0), ("s2", 40.0, 45.0))
    ]
    ablation = RunGroup("tiny-paper", "growth", [run("tiny-paper", "growth", 20.0, 50.0)])
    report = build_report(run("tiny", "growth", 30.0, 44.0), [*family, ablation])
    assert [h["against_label"] for h in report["headline"]] == ["baseline-scratch-s2"]
    (variant,) = report["variants"]
    assert variant["label"] == "tiny-paper" and variant["val_ppl"] == pytest.approx(50.0)
    points = [Point(10.0, 60.0), Point(40.0, 45.0)]
    assert variant["frontier_flops_ratio"]["scratch"] == pytest.approx(20.0 / frontier_flops(points, 50.0))
    assert "## Other growth runs against the from-scratch frontier" in to_markdown(report)
    assert "tiny-paper" not in report["flops_to_reach"][0]["flops"]  # the mid-schedule race leaves it out


def test_each_other_growth_run_gets_the_main_runs_interval_and_verdict():
    """An ablation given with --with is read off the same frontier as the main run, with its own bootstrap
    interval and verdict: one clearly above the frontier costs compute, one clearly below saves it."""

    def seeds(name, kind, flops, ppls, family=None):
        runs = [run(f"{name}.seed{i}", kind, flops, p, seed=i) for i, p in enumerate(ppls)]
        return RunGroup(name, kind, runs, family, flops if family else None)

    family = [
        seeds("baseline-scratch-s1", "scratch", 10.0, [60.0, 61.0, 59.0], "scratch"),
        seeds("baseline-scratch-s2", "scratch", 40.0, [45.0, 45.5, 44.5], "scratch"),
    ]
    worse = seeds("tiny-paper", "growth", 20.0, [58.0, 58.5, 57.5])  # the frontier needs ~11 FLOPs for 58
    better = seeds("tiny-anneal", "growth", 20.0, [46.0, 46.2, 45.8])  # ~34 FLOPs for 46
    report = build_report(seeds("tiny", "growth", 30.0, [50.0, 50.5, 49.5]), [*family, worse, better])
    verdicts = {v["label"]: v["headlines"][0] for v in report["variants"]}
    assert verdicts["tiny-paper"]["verdict"] == "costs compute"
    assert verdicts["tiny-paper"]["frontier_flops_ratio_ci"][0] > 1
    assert verdicts["tiny-anneal"]["verdict"] == "saves compute"
    assert verdicts["tiny-anneal"]["frontier_flops_ratio_ci"][1] < 1
    assert verdicts["tiny-anneal"]["n_seeds"] == 3 and verdicts["tiny-anneal"]["run"] == "tiny-anneal"
    markdown = to_markdown(report)
    for h in verdicts.values():
        assert f"| {h['run']} | baseline-scratch-s2 | 3 |" in markdown and h["verdict"] in markdown


def test_a_planned_reference_with_no_finished_run_has_no_headline_numbers():
    pending = RunGroup("baseline-scratch-s2", "scratch", [], "scratch", 5000)
    done = RunGroup(
        "baseline-scratch-s1",
        "scratch",
        [run("tiny.baseline-scratch-s1", "scratch", 10.0, 60.0)],
        "scratch",
        100,
    )
    (head,) = build_report(run("tiny", "growth", 30.0, 44.0), [done, pending])["headline"]
    assert head["against_label"] == "baseline-scratch-s2" and head["n_seeds"] == 0
    assert "ppl_growth" not in head and head["verdict"] == "inconclusive"
