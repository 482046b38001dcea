"""The headline where people read it: report.md, an 80-column console and the figure show the same numbers,
and no table cuts a number. Synthetic runs: a growth run and a Transformer family at two sizes × two budgets,
three seeds each."""

import math
import re
from pathlib import Path

import pytest
from rich.console import Console

from tfctl.cli.render import print_report
from tfctl.compare.curves import Curve
from tfctl.compare.frontier import hull
from tfctl.compare.headline import family_points
from tfctl.compare.markdown import to_markdown
from tfctl.compare.plot import plot_ppl_vs_flops
from tfctl.compare.report import build_report, frontier_groups
from tfctl.compare.runs import RunGroup, RunSummary
from tfctl.compare.tables import headline_lines, headline_rows, run_rows, stage_end_rows, target_rows
from tfctl.compare.wording import frontier_ratio_text, iso_gap_text, iso_ppl_text, ppl_gap_text

NUMBER = re.compile(r"[−+-]?\d[\d.,]*(?:e[+-]?\d+)?(?:k|m|M|b|B)?")


def run(name, kind, flops, ppl, seed, params):
    ends = [{"stage": "s1", "flops": flops / 3, "val_ppl": ppl * 1.4, "device_hours": 0.1}]
    ends.append({"stage": "s2", "flops": flops, "val_ppl": ppl, "device_hours": 0.3})
    return RunSummary(
        name=name,
        path=Path("runs") / name,
        kind=kind,
        stages=["s1", "s2"] if kind == "growth" else ["scratch"],
        val_loss=math.log(ppl),
        val_ppl=ppl,
        params=params,
        tokens=12345,
        flops=flops,
        device_hours=0.3,
        wall_hours=0.3,
        mfu=0.21,
        world_size=1,
        curve=Curve(flops=[0, flops / 3, flops], ppl=[400, ppl * 1.4, ppl], device_hours=[0, 0.1, 0.3]),
        stage_ends=ends if kind == "growth" else ends[1:],
        seed=seed,
    )


def groups():
    noise = (0.0, 0.02, -0.015)
    growth = RunGroup(
        "tiny",
        "growth",
        [
            run(f"tiny.seed{s}", "growth", 2.4e12, 30.0 * math.exp(n), s, 8000)
            for s, n in zip((7, 1007, 2007), noise, strict=True)
        ],
    )
    family = []
    for size, params, budget, flops, ppl in (
        ("s1", 2000, "1k", 1e12, 40.0),
        ("s2", 8000, "1k", 4e12, 31.0),
        ("s1", 2000, "2k", 2e12, 37.0),
        ("s2", 8000, "2k", 8e12, 27.0),
    ):
        label = f"baseline-scratch-{size}-{budget}"
        runs = [
            run(f"tiny.{label}.seed{s}", "scratch", flops, ppl * math.exp(n), s, params)
            for s, n in zip((7, 1007, 2007), noise, strict=True)
        ]
        family.append(RunGroup(label, "scratch", runs, f"transformer, {budget} tokens", params))
    return growth, family


@pytest.fixture(scope="module")
def shown(tmp_path_factory):
    growth, family = groups()
    report = build_report(growth, family, targets=[33.3])
    console = Console(width=80, record=True, color_system=None)
    print_report(report, out=console)
    figure = tmp_path_factory.mktemp("figure") / "ppl_vs_flops.png"
    drawn = plot_ppl_vs_flops(
        [growth, *family], figure, frontiers=frontier_groups(family), caption=headline_lines(report)
    )
    return report, to_markdown(report, figure.name), console.export_text(), drawn, family


def test_one_frontier_over_every_size_and_budget(shown):
    report, _, _, drawn, family = shown
    (head,) = report["headline"]
    assert head["against_label"] == "baseline-scratch-s2-2k"  # the largest size at the largest budget
    assert len(head["family"]) == 4 and set(drawn["frontiers"]) == {"transformer"}
    vertices = [[p.flops, p.ppl] for p in hull(family_points(family))]
    assert drawn["frontiers"]["transformer"] == vertices  # the plot draws exactly the hull the numbers use
    assert [v["label"] for v in head["frontier"]] == [p.label for p in hull(family_points(family))]
    assert "baseline-scratch-s1-2k" not in [v["label"] for v in head["frontier"]]  # above the hull
    for key in ("frontier_flops_ratio_ci", "ppl_gap_pct_ci", "iso_flops_ppl_ci", "iso_flops_ppl_gap_pct_ci"):
        assert head[key] is not None and head[key][0] <= head[key][1]
    assert head["n_seeds"] == 3 and head["verdict"] in ("saves compute", "costs compute", "inconclusive")


def test_report_console_and_figure_show_the_same_numbers(shown):
    report, markdown, console, drawn, _ = shown
    (head,) = report["headline"]
    flat = " ".join(console.split())  # the console wraps long lines
    numbers = (frontier_ratio_text(head), iso_ppl_text(head), iso_gap_text(head), ppl_gap_text(head))
    for text in (*numbers, head["sentence"]):
        assert text in markdown and " ".join(text.split()) in flat, text
    assert drawn["caption"] == headline_lines(report) == [head["sentence"]]
    assert frontier_ratio_text(head) in drawn["caption"][0]


def test_every_number_of_every_table_appears_whole_at_80_columns(shown):
    report, _, console, _, _ = shown
    assert max(len(line) for line in console.splitlines()) <= 80
    words = set(console.split())
    cells = [
        cell
        for rows in (run_rows, headline_rows, stage_end_rows, target_rows)
        for row in rows(report)[1]
        for cell in row
    ]
    numbers = [n for cell in cells for n in NUMBER.findall(cell)]
    assert len(numbers) > 40
    for number in numbers:
        assert any(number in word for word in words), number
    assert "…" not in console
    assert "stage ends against the from-scratch frontier" in console


def test_no_frontier_no_frontier_title():
    growth, family = groups()
    report = build_report(growth, family[:1])
    console = Console(width=80, record=True, color_system=None)
    print_report(report, out=console)
    text = console.export_text()
    assert "stage ends" in text and "against the from-scratch frontier" not in text
    assert "against the from-scratch frontier" not in to_markdown(report)


def test_a_stalled_seed_is_flagged_where_people_read_it():
    growth, family = groups()
    growth.runs[2] = run("tiny.seed2007", "growth", 2.4e12, 40.0, 2007, 8000)  # stalled: 40 against ~30
    report = build_report(growth, family)
    row = report["groups"][0]
    assert row["outlier_seeds"] == [2007] and row["n_finished"] == 3  # flagged, still counted
    assert row["val_ppl"] == pytest.approx(
        math.exp((math.log(30) + math.log(30 * math.exp(0.02)) + math.log(40)) / 3)
    )
    assert row["val_ppl_median"] == pytest.approx(30 * math.exp(0.02))
    console = Console(width=80, record=True, color_system=None)
    print_report(report, out=console)
    line = "tiny: seed 2007 is an outlier"
    assert line in " ".join(console.export_text().split()) and line in to_markdown(report)
    assert all(g["outlier_seeds"] == [] for g in report["groups"][1:])
