"""The τ anneal through `tfctl train`: its own length (not the warmup), an evaluation at its end. A run without
it is evaluated as before (step 0, every eval_interval, the last step): test_train.py's
test_a_run_without_anneal_evaluates_at_0_every_interval_and_the_last_step, on the run that file trains."""

import json

import pytest
import yaml

from tests.conftest import PEAK_FLOPS, run_tfctl
from tfctl.compare.dynamics import run_dynamics

pytestmark = pytest.mark.slow  # a tiny `tfctl train` run

RECIPE = {
    "seed": 5,
    "data": {"source": "shakespeare", "tokenizer": "bpe:512", "seq_len": 32},
    "model": {"d_model": 32, "n_layers": 2, "n_heads": 4},
    "stages": [
        {"name": "s1", "param_tokens": 16, "steps": 4},
        {"name": "s2", "param_tokens": 40, "steps": 7, "init": "preserve"},  # what the anneal follows
    ],
    "train": {
        "global_batch": 8,
        "lr": 3e-3,
        "warmup": 1,
        "eval_interval": 5,
        "eval_batches": 2,
        "eval_batch_size": 4,
        "checkpoint_interval": 5,
        "peak_flops": PEAK_FLOPS,
    },
    "wandb": {"mode": "disabled"},
    "baseline": [],
}


def train(tmp_path, name, model):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**RECIPE, "name": name, "model": {**RECIPE["model"], **model}}))
    run_dir = tmp_path / "runs" / name
    result = run_tfctl("train", path, "-o", run_dir, cwd=tmp_path, env={"WANDB_MODE": "disabled"})
    assert result.returncode == 0, result.stderr[-2000:]
    return run_dir


def eval_steps(run_dir, stage):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return sorted(r["step"] for r in map(json.loads, lines) if r["kind"] == "eval" and r["stage"] == stage)


def test_anneal_has_its_own_length_and_an_eval_at_its_end(tmp_path):
    annealed = train(tmp_path, "anneal", {"scale_mode": "anneal", "anneal": 3})
    spec = json.loads((annealed / "stages" / "s2" / "spec.json").read_text())
    assert spec["tau"] == {"kind": "anneal", "steps": 3} and spec["schedule"]["warmup_steps"] == 1
    assert eval_steps(annealed, "s2") == [0, 3, 5, 7]
    assert json.loads((annealed / "stages/s2/final/config.json").read_text())["scale_mode"] == "sqrt_n"
    (s2,) = run_dynamics(annealed, ["s1", "s2"])
    assert s2["loss_jump"] == pytest.approx(0.0, abs=1e-5)  # preserve growth: exact at the growth step
    assert s2["recovery_steps"] == 0 and s2["eval_steps"] == [0, 3, 5, 7]
    # the first stage (never annealed): fewer steps than eval_interval, evaluated at 0 and at its last step
    assert json.loads((annealed / "stages" / "s1" / "spec.json").read_text())["tau"]["steps"] == 0
    assert eval_steps(annealed, "s1") == [0, 4]
