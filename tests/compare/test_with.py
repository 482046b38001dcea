"""`tfctl compare RUN --with OTHER` through the real CLI (the README's example), for growth runs and baselines
alike: a headline against what is there, report files written, and nothing written when it fails."""

import json
import shutil

import pytest

pytestmark = pytest.mark.slow  # the shared growth run and its trained baseline

IGNORE = shutil.ignore_patterns("checkpoints", "final", "init", "data", "compare", "wandb")


def copy_run(source, target):
    """A copy of a finished run (its numbers, not its weights); a baseline's record points at its new source."""
    shutil.copytree(source, target, ignore=IGNORE)
    record = target / "baseline.json"
    if record.is_file():
        recorded = json.loads(record.read_text())
        recorded["source_run"] = str(target.parent / target.name.split(".")[0])
        record.write_text(json.dumps(recorded))


def compare_json(tfctl, *args) -> dict:
    result = tfctl("compare", *args, "--json", env={"WANDB_MODE": "disabled"}, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_readme_example_keeps_the_headline(tfctl, growth_run, compared, tmp_path):
    """`tfctl compare runs/tiny --with runs/tiny-preserve --json` after `tfctl compare runs/tiny`: the earlier
    baseline stays the reference (it used to lose its seed pairing: "no finished pair of runs yet")."""
    tiny, preserve = tmp_path / "runs" / "tiny", tmp_path / "runs" / "tiny-preserve"
    copy_run(growth_run, tiny)
    copy_run(growth_run.parent / "tiny.baseline-scratch", tiny.parent / "tiny.baseline-scratch")
    copy_run(growth_run, preserve)
    report = compare_json(tfctl, tiny, "--with", preserve)
    (head,) = report["headline"]
    assert head["against_label"] == "baseline-scratch" and head["n_seeds"] == 1
    assert head["ppl_growth"] == pytest.approx(report["runs"][0]["val_ppl"])
    assert head["verdict"] == "inconclusive" and "no finished pair" not in head["sentence"]
    for key in (
        "frontier_flops_ratio",
        "frontier_flops_ratio_ci",
        "iso_flops_ppl",
        "iso_flops_ppl_gap_pct_ci",
    ):
        assert key in head
    (variant,) = report["variants"]
    assert variant["label"] == "tiny-preserve"
    markdown = (tiny / "compare" / "report.md").read_text()
    assert head["sentence"] in markdown


def test_another_growth_run_or_a_baseline_as_the_reference(tfctl, growth_run, compared, tmp_path):
    """A run with no baselines of its own against another growth run (it ended in KeyError), and a baseline
    compared against the growth run."""
    runs = tmp_path / "runs"
    alone, other = runs / "alone", runs / "other"
    copy_run(growth_run, alone)
    copy_run(growth_run, other)
    report = compare_json(tfctl, alone, "--with", other)
    (head,) = report["headline"]
    assert head["against_label"] == "other" and head["ppl_gap_pct"] == pytest.approx(0.0)
    assert head["flops_ratio"] == pytest.approx(1.0)
    assert report["flops_to_reach"][0]["flops"]["other"] is not None  # the race reads the reference too
    assert (alone / "compare" / "report.md").is_file() and (alone / "compare" / "ppl_vs_flops.png").is_file()

    baseline = runs / "tiny.baseline-scratch"
    copy_run(growth_run.parent / "tiny.baseline-scratch", baseline)
    report = compare_json(tfctl, baseline, "--with", alone)
    (head,) = report["headline"]
    assert head["run"] == "tiny.baseline-scratch" and head["against_label"] == "alone"
    assert head["flops_ratio"] == pytest.approx(report["runs"][0]["flops"] / report["runs"][1]["flops"])
    assert (baseline / "compare" / "report.json").is_file()
