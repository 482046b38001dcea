"""`tfctl plan`'s time estimates from a fake run history: a fixed part per stage plus FLOPs at the rate of
the training steps, so a tiny stage is no longer estimated at its FLOPs alone."""

import json

import pytest
import yaml

from tfctl.recipe import load_recipe, plan_recipe
from tfctl.recipe.plan import DEFAULT_STAGE_OVERHEAD_SECONDS
from tfctl.run.history import stage_times
from tfctl.run.layout import RunDir

RECIPE = {
    "name": "hist",
    "data": {"source": "shakespeare", "tokenizer": "bpe:512", "seq_len": 32},
    "model": {"d_model": 32, "n_layers": 2, "n_heads": 4},
    "stages": [
        {"name": "s1", "param_tokens": 16, "steps": 4},
        {"name": "s2", "param_tokens": 40, "steps": 4},
    ],
    "train": {"global_batch": 8},
    "baseline": [],
}
RATE = 1e8  # FLOP/s of training steps in the fake history
OVERHEAD = 12.0  # seconds per stage besides its steps


def write_history(root, stages, step_times=True, elapsed=True):
    """Finished stages as the stage loop leaves them: train + stage_end records, state.json."""
    lines, state = [], {"name": root.name, "stages": {}}
    for name, flops, steps in stages:
        step_seconds = flops / RATE / steps
        if step_times:
            lines += [
                {"kind": "train", "stage": name, "step": s, "step_seconds": step_seconds} for s in range(1, 5)
            ]
        train_seconds = flops / RATE
        end = {
            "kind": "stage_end",
            "stage": name,
            "step": steps,
            "steps": steps,
            "stage_flops": flops,
            "wall_seconds": train_seconds + OVERHEAD - 3,  # the worker does not see its own start nor export
            **{k: 1.0 for k in ("tokens", "flops", "device_seconds", "stage_tokens", "val_loss", "val_ppl")},
            "params": 1,
        }
        lines.append(end)
        state["stages"][name] = {"status": "done", "result": end}
        if elapsed:
            state["stages"][name]["elapsed_seconds"] = train_seconds + OVERHEAD
    root.mkdir(parents=True)
    (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (root / "state.json").write_text(json.dumps(state))
    return RunDir(root)


def test_fixed_part_and_step_rate_come_from_the_history(tmp_path):
    # s2 logged 4 of its 8 steps (log_interval 2): their times scale to all 8
    run = write_history(tmp_path / "hist", [("s1", 2e8, 4), ("s2", 8e8, 8)])
    times = stage_times(run)
    assert times.flops_per_second == pytest.approx(RATE)
    assert times.overhead_seconds == pytest.approx(OVERHEAD)
    assert times.source == f"measured on 2 finished stage(s) of {run.root}"
    # a tiny stage: mostly its fixed part, not its FLOPs / rate (what made the old estimate ~4x short)
    assert times.seconds(4e8) == pytest.approx(OVERHEAD + 4.0)


def test_plan_estimates_every_stage_with_the_fixed_part(tmp_path):
    run = write_history(tmp_path / "hist", [("s1", 2e8, 4), ("s2", 8e8, 4)])
    path = tmp_path / "hist.yaml"
    path.write_text(yaml.safe_dump(RECIPE))
    plan = plan_recipe(load_recipe(path), times=stage_times(run)).to_dict()
    for stage in plan["stages"]:
        assert stage["estimated_seconds"] == pytest.approx(OVERHEAD + stage["flops"] / RATE)
    assert plan["stage_overhead_seconds"] == pytest.approx(OVERHEAD)


def test_without_step_times_the_documented_default_is_the_fixed_part(tmp_path):
    run = write_history(tmp_path / "old", [("s1", 2e10, 4)], step_times=False, elapsed=False)
    times = stage_times(run)
    assert times.overhead_seconds == DEFAULT_STAGE_OVERHEAD_SECONDS
    wall = 2e10 / RATE + OVERHEAD - 3
    assert times.flops_per_second == pytest.approx(2e10 / (wall - DEFAULT_STAGE_OVERHEAD_SECONDS))
    assert "default 15 s per stage" in times.source


def test_no_finished_stage_no_estimate(tmp_path):
    assert stage_times(RunDir(tmp_path / "absent")) is None
    run = write_history(tmp_path / "hist", [("s1", 2e8, 4)])
    state = json.loads(run.state.read_text())
    state["stages"]["s1"] = {"status": "training"}  # --force s1: its old records do not count
    run.state.write_text(json.dumps(state))
    assert stage_times(run) is None


def test_plan_says_what_est_time_dash_means_and_uses_run(tfctl, tmp_path):
    path = tmp_path / "hist.yaml"
    path.write_text(yaml.safe_dump(RECIPE))
    result = tfctl("plan", path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "est. time —: no finished stage in runs/hist yet" in result.stdout
    write_history(tmp_path / "elsewhere", [("s1", 2e8, 4), ("s2", 8e8, 4)])
    result = tfctl("plan", path, "--run", tmp_path / "elsewhere", "--json", cwd=tmp_path)
    plan = json.loads(result.stdout)
    assert [s["estimated_seconds"] for s in plan["stages"]] == pytest.approx(
        [OVERHEAD + s["flops"] / RATE for s in plan["stages"]]
    )
    help_text = tfctl("plan", "--help", cwd=tmp_path).stdout
    assert "shows — until" in " ".join(help_text.split())
