"""`tfctl train` end to end through the real CLI, worker and launchers (tiny models, few steps)."""

import json
import os

import pytest
import yaml

from tests.conftest import run_tfctl

pytestmark = pytest.mark.slow  # `tfctl train` end to end

RECIPE = {
    "name": "e2e",
    "seed": 3,
    "data": {"source": "shakespeare", "tokenizer": "bpe:512", "seq_len": 32},
    "model": {"d_model": 32, "n_layers": 2, "n_heads": 4},
    "stages": [
        {"name": "s1", "param_tokens": 16, "steps": 6},
        {"name": "s2", "param_tokens": 40, "steps": 6, "optimizer": "carry"},
    ],
    "train": {
        "global_batch": 8,
        "lr": 3e-3,
        "eval_interval": 3,
        "eval_batches": 2,
        "eval_batch_size": 4,
        "checkpoint_interval": 3,
    },
}


def records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def train(tmp_path, name, *extra, recipe=RECIPE):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**recipe, "name": name}))
    env = {"WANDB_MODE": "offline"}
    return path, run_tfctl("train", path, "-o", tmp_path / "runs" / name, *extra, cwd=tmp_path, env=env)


def check_finished_run(run_dir, world_size):
    kinds = {(r["kind"], r["stage"]) for r in records(run_dir)}
    assert {
        ("train", "s1"),
        ("eval", "s1"),
        ("stage_end", "s1"),
        ("growth", "s2"),
        ("train", "s2"),
        ("eval", "s2"),
        ("stage_end", "s2"),
    } <= kinds
    growth = next(r for r in records(run_dir) if r["kind"] == "growth")
    assert growth["max_abs_logit_diff"] <= 1e-5 and growth["params_after"] > growth["params_before"]
    for stage in ("s1", "s2"):
        final = run_dir / "stages" / stage / "final"
        assert {"model.safetensors", "config.json", "tokenizer.json"} <= {p.name for p in final.iterdir()}
    ends = [r for r in records(run_dir) if r["kind"] == "stage_end"]
    assert [e["world_size"] for e in ends] == [world_size, world_size]
    # the cumulative axes continue across stages
    assert ends[1]["tokens"] == 2 * 6 * 8 * 32 and ends[1]["flops"] > ends[0]["flops"] > 0
    state = json.loads((run_dir / "state.json").read_text())
    assert [s["status"] for s in state["stages"].values()] == ["done", "done"]
    offline = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline) == 3, offline  # one W&B run per stage, and the summary run
    ids = {e["wandb_run_id"] for e in ends}
    assert all(any(path.name.endswith(run_id) for path in offline) for run_id in ids)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("train1")
    path, result = train(tmp_path, "e2e")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return tmp_path, path, tmp_path / "runs" / "e2e"


def test_train_one_process_end_to_end(single):
    _, _, run_dir = single
    check_finished_run(run_dir, world_size=1)
    # the grown stage started from the carried optimizer state and the grown weights
    spec = json.loads((run_dir / "stages" / "s2" / "spec.json").read_text())
    assert spec["init_weights"].endswith("s2/init") and spec["init_optimizer"].endswith(
        "optimizer.safetensors"
    )
    assert spec["tokens_offset"] == 6 * 8 * 32


def test_second_train_does_nothing(single):
    tmp_path, path, run_dir = single
    before = (run_dir / "metrics.jsonl").read_text()
    result = run_tfctl("train", path, "-o", run_dir, cwd=tmp_path, env={"WANDB_MODE": "offline"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("already done") == 2
    assert (run_dir / "metrics.jsonl").read_text() == before


def test_changed_recipe_is_refused_and_force_retrains(single, tmp_path):
    import shutil

    home, path, original = single
    run_dir = tmp_path / "forced"
    shutil.copytree(original, run_dir, symlinks=True)  # the shared run stays as it was
    changed = ("--set", "stages.1.steps=4")
    result = run_tfctl("train", path, "-o", run_dir, *changed, cwd=home)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {run_dir}: the recipe changed for stage s2, which already ran; "
        "use --force s2 to retrain from it, or -o for a new run directory"
    )
    s1_before = [r for r in records(run_dir) if r["stage"] == "s1"]
    result = run_tfctl("train", path, "-o", run_dir, *changed, "--force", "s2", cwd=home)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert [r for r in records(run_dir) if r["stage"] == "s1"] == s1_before  # s1 kept as it was
    assert [r["step"] for r in records(run_dir) if r["kind"] == "train" and r["stage"] == "s2"] == [
        1,
        2,
        3,
        4,
    ]
    state = json.loads((run_dir / "state.json").read_text())
    assert state["stages"]["s2"]["status"] == "done" and state["stages"]["s2"]["result"]["step"] == 4


def test_eval_reproduces_the_final_val_loss(single):
    _, _, run_dir = single
    result = run_tfctl("eval", run_dir, "--json")
    assert result.returncode == 0, result.stderr
    final = [r for r in records(run_dir) if r["kind"] == "stage_end"][-1]
    assert json.loads(result.stdout)["loss"] == pytest.approx(final["val_loss"], abs=1e-5)


def test_grow_run_appends_and_trains_a_stage(single, tmp_path):
    import shutil

    _, _, run_dir = single
    copy = tmp_path / "grown"
    shutil.copytree(run_dir, copy, symlinks=True)
    result = run_tfctl("grow", copy, "--to", "120k", "--steps", "3", "--json", env={"WANDB_MODE": "disabled"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(result.stdout)  # --json: stdout is the JSON alone
    assert report["stage"] == "120k" and report["params"] == pytest.approx(120_000, rel=0.02)
    state = json.loads((copy / "state.json").read_text())
    assert list(state["stages"]) == ["s1", "s2", "120k"]
    assert all(s["status"] == "done" for s in state["stages"].values())
    growth = [r for r in records(copy) if r["kind"] == "growth"]
    assert growth[-1]["stage"] == "120k" and growth[-1]["max_abs_logit_diff"] <= 1e-5


def test_train_two_processes_through_deepspeed(tmp_path):
    _, result = train(
        tmp_path, "e2e2", "--set", "launch.nproc_per_node=2", "--set", "launch.launcher=deepspeed"
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    check_finished_run(tmp_path / "runs" / "e2e2", world_size=2)
    assert os.path.exists(tmp_path / "runs" / "e2e2" / "stages" / "s2" / "worker.log")
