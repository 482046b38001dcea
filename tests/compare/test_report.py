"""Report and figure on synthetic runs: no training."""

from pathlib import Path

import pytest

from tfctl.compare.curves import Curve
from tfctl.compare.markdown import to_markdown
from tfctl.compare.plot import plot_ppl_vs_flops
from tfctl.compare.report import build_report
from tfctl.compare.runs import RunSummary
from tfctl.compare.tables import RUN_COLUMNS


def summary(name, kind, flops, ppl, growth=()):
    return RunSummary(
        name=name,
        path=Path("runs") / name,
        kind=kind,
        stages=["s1"],
        val_loss=1.0,
        val_ppl=ppl[-1],
        params=1000,
        tokens=100,
        flops=flops[-1],
        device_hours=0.5,
        wall_hours=0.5,
        mfu=0.3,
        world_size=1,
        curve=Curve(flops=list(flops), ppl=list(ppl), growth_flops=list(growth)),
    )


GROWTH = summary("tiny", "growth", [0, 10, 20, 30], [400, 100, 60, 40], growth=[20])
SCRATCH = summary("tiny.baseline-scratch", "scratch", [0, 30, 60, 90], [400, 90, 50, 42])


def test_headline_and_targets():
    report = build_report(GROWTH, [SCRATCH], targets=[70])
    head = report["headline"][0]
    assert head["flops_ratio"] == pytest.approx(30 / 90)
    assert head["ppl_gap_pct"] == pytest.approx((40 / 42 - 1) * 100)
    first = report["flops_to_reach"][0]
    assert first["ppl"] == 42 and first["label"] == "final of baseline-scratch"
    assert first["flops"]["tiny.baseline-scratch"] == 90
    assert first["flops"]["tiny"] == pytest.approx(20 + 10 * (60 - 42) / 20)
    assert first["speedup"]["tiny"] == pytest.approx(90 / first["flops"]["tiny"])
    own = report["flops_to_reach"][1]
    assert own["label"] == "final of tiny" and own["flops"]["tiny.baseline-scratch"] is None
    assert own["speedup"]["tiny"] is None
    fixed = report["flops_to_reach"][-1]
    assert fixed["ppl"] == 70 and fixed["label"] == "fixed"
    markdown = to_markdown(report, "ppl_vs_flops.png")
    assert "| baseline-scratch | scratch |" in markdown
    assert "![" in markdown
    assert (
        "inconclusive (1 seed: no interval); against baseline-scratch: ppl gap -4.8 %, 0.33× the FLOPs"
        in markdown
    )
    ppls = [
        float(line.split("|")[1])
        for line in markdown.split("## Mid-schedule: FLOPs to first reach")[1].splitlines()
        if line.startswith("| ") and not line.startswith("| target")
    ]
    assert ppls == sorted(ppls, reverse=True)  # easiest target first


def test_wandb_tables_hold_numbers():
    from tfctl.compare.tables import run_values, target_values

    report = build_report(GROWTH, [SCRATCH], targets=[70])
    _, rows = run_values(report)
    assert rows[0][2:] == [1.0, 40, 1000, 100, 30, 0.5, 0.3]
    _, races = target_values(report)
    assert races[0][:2] == [70, "fixed"] and all(isinstance(r[0], float | int) for r in races)


def test_one_seed_is_inconclusive():
    from tfctl.compare.tables import headline_lines

    report = build_report(GROWTH, [summary("twin", "run", [0, 10, 20, 30], [400, 100, 60, 40])])
    (line,) = headline_lines(report)
    assert line.startswith("tiny vs twin: inconclusive (1 seed: no interval); against twin: ppl gap +0.0 %")
    assert "1.00× the FLOPs" in line


def test_figure_has_one_line_per_run(tmp_path):
    path = tmp_path / "figure.png"
    drawn = plot_ppl_vs_flops([GROWTH, SCRATCH], path)
    lines = drawn["lines"]
    assert [line["label"] for line in lines] == ["tiny (growth)", "tiny.baseline-scratch (scratch)"]
    assert [line["points"] for line in lines] == [3, 3]  # the eval at 0 FLOPs has no place on a log axis
    assert drawn["legend"] == [*(line["label"] for line in lines), "growth (a new stage starts)"]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_wandb_failure_is_a_warning(monkeypatch, tmp_path):
    import wandb

    from tfctl.compare.pipeline import log_comparison

    def broken(*args, **kwargs):
        raise RuntimeError("no network")

    monkeypatch.setattr(wandb, "init", broken)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    report = build_report(GROWTH, [SCRATCH])
    assert log_comparison(report, None, None, tmp_path) == "failed: no network"  # no recipe: offline
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert log_comparison(report, None, None, tmp_path) == "disabled"


def test_wandb_gets_the_tables_and_headline_numbers_compare_built(monkeypatch, tmp_path):
    import wandb

    from tfctl.compare.pipeline import log_comparison

    logged = {}

    class Run:
        summary = {}

        def log(self, values):
            logged.update(values)

        def finish(self):
            pass

    def init(**options):
        logged["name"] = options["name"]
        return Run()

    monkeypatch.setattr(wandb, "init", init)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    report = build_report(GROWTH, [SCRATCH])
    assert log_comparison(report, tmp_path / "absent.png", None, tmp_path) == "offline"
    assert logged.keys() == {"name", "compare/runs", "compare/flops_to_reach"}  # no figure file: no image
    assert logged["name"] == f"{report['run']}/compare"
    table = logged["compare/runs"]
    assert table.columns == RUN_COLUMNS and [row[0] for row in table.data] == [
        r["label"] for r in report["runs"]
    ]
    assert Run.summary[f"{report['runs'][0]['name']}/val_ppl"] == report["runs"][0]["val_ppl"]
