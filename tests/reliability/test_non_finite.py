"""A loss that goes NaN/inf through `tfctl train`: one line naming the step, the stage marked failed,
checkpoints and metrics so far intact; the fixed recipe retrains with --force."""

import json

import pytest

from tests.conftest import run_tfctl
from tests.reliability.conftest import ENV, RECIPE, records, write_recipe
from tfctl.stage.manifest import verify_manifest

pytestmark = pytest.mark.slow  # real `tfctl train` runs


def test_non_finite_loss_then_force_retrain(tmp_path):
    # an LR this large sends the weights to ~1e37: the next forward overflows for real
    recipe = {
        **RECIPE,
        "stages": [{"name": "s1", "param_tokens": 16, "steps": 6}],
        "train": {**RECIPE["train"], "lr": 1e36, "min_lr": 1e36, "warmup": 0.0, "checkpoint_interval": 1},
    }
    path, run_dir = write_recipe(tmp_path / "nan.yaml", recipe), tmp_path / "run"
    result = run_tfctl("train", path, "-o", run_dir, env=ENV)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    (error,) = records(run_dir, "error", "s1")
    step = error["step"]
    assert f"non-finite loss (nan) at step {step}" in line or f"non-finite loss (inf) at step {step}" in line
    stage = json.loads((run_dir / "state.json").read_text())["stages"]["s1"]
    assert stage["status"] == "failed" and stage["exit_code"] == 3
    checkpoints = run_dir / "stages" / "s1" / "checkpoints"
    assert (checkpoints / "latest").read_text() == f"step{step - 1:08d}"
    assert verify_manifest(checkpoints / f"step{step - 1:08d}") is None
    assert [r["step"] for r in records(run_dir, "train", "s1")] == list(range(1, step))

    fixed = run_tfctl(
        "train",
        path,
        "-o",
        run_dir,
        "--set",
        "train.lr=3e-3",
        "--set",
        "train.min_lr=3e-4",
        "--force",
        "s1",
        env=ENV,
    )
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert json.loads((run_dir / "state.json").read_text())["stages"]["s1"]["status"] == "done"
    assert [r["step"] for r in records(run_dir, "train", "s1")] == list(range(1, 7))
    assert records(run_dir, "error", "s1") == []
