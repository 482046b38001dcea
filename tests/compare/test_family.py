"""A from-scratch family and the Tokenformer control through the real worker, with two seeds: every run a
sibling of the stage loop, the headline from finished runs, the frontier from the family's finals."""

import json
import math
import shutil

import pytest
import yaml

from tfctl.compare import compare_run
from tfctl.run.layout import RunDir

BASELINES = [
    {"name": "scratch", "family": "transformer", "sizes": "stages", "tokens": "base", "seeds": 1},
    {"name": "tf-scratch", "family": "tokenformer", "tokens": "base"},
]


@pytest.mark.slow
def test_family_control_and_seeds(growth_run, tmp_path):
    run_dir = tmp_path / "runs" / "tiny"
    shutil.copytree(growth_run, run_dir, ignore=shutil.ignore_patterns("compare", "wandb"))
    recipe = yaml.safe_load(RunDir(run_dir).recipe.read_text())
    recipe.update(seeds=2, baseline=BASELINES)  # neither changes a fingerprint: the stages are reused
    RunDir(run_dir).recipe.write_text(yaml.safe_dump(recipe))
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "disabled")
        report = compare_run(run_dir, say=lines.append)

    siblings = sorted(p.name for p in run_dir.parent.iterdir() if p != run_dir)
    assert siblings == [
        "tiny.baseline-scratch-s1-5.12k",
        "tiny.baseline-scratch-s2-5.12k",
        "tiny.baseline-tf-scratch-5.12k",
        "tiny.baseline-tf-scratch-5.12k.seed1007",
        "tiny.seed1007",
    ]
    control = json.loads(
        (RunDir(run_dir.parent / siblings[2]).final("tf-scratch") / "config.json").read_text()
    )
    assert control["family"] == "tokenformer" and control["scale_mode"] == "sqrt_n"
    groups = {g["label"]: g for g in report["groups"]}
    assert groups["tiny"]["n_finished"] == 2 and groups["baseline-tf-scratch-5.12k"]["n_finished"] == 2
    assert groups["baseline-scratch-s1-5.12k"]["tokens"] == 20 * 8 * 32  # base: the first stage's budget
    family, control_head = report["headline"]
    assert family["against_label"] == "baseline-scratch-s2-5.12k" and len(family["family"]) == 2
    assert family["n_seeds"] == 1  # the family has one seed: no interval on its numbers
    assert family["frontier_flops_ratio_ci"] is None and family["verdict"] == "inconclusive"
    assert control_head["n_seeds"] == 2 and control_head["ppl_gap_pct_ci"] is not None
    growth_final = [r for r in report["runs"] if r["group"] == "tiny"]
    mean_loss = sum(math.log(r["val_ppl"]) for r in growth_final) / 2
    assert control_head["ppl_growth"] == pytest.approx(math.exp(mean_loss))  # the mean in loss space
    for key in ("ppl_growth", "ppl_reference", "ppl_gap_pct", "flops_ratio", "device_hours_ratio"):
        assert control_head[key] is not None, key
    assert "frontier_flops_ratio" in family and "n_seeds" in family
    assert [row["stage"] for row in report["stage_ends"]] == ["s1", "s2"]
    markdown = (RunDir(run_dir).compare / "report.md").read_text()
    assert "device-hours" in markdown and "Mid-schedule" in markdown
