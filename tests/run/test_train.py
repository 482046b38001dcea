"""`tfctl train` end to end through the real CLI, worker and launchers (tiny models, few steps)."""

import json
import os

import pytest
import yaml

from tests.conftest import PEAK_FLOPS, run_tfctl

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
        "eval_interval": 4,  # 6 steps: evaluated at 0, 4 and the last step
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
    assert growth["params_after"] > growth["params_before"]
    # no `init:` in the recipe: the paper's growth (random new keys, τ = sqrt(n) of the grown size), a jump
    assert growth["init"] == "paper" and growth["max_abs_logit_diff"] > 1e-3
    grown = json.loads((run_dir / "stages" / "s2" / "init" / "config.json").read_text())
    assert (grown["qkv_tokens"], grown["scale_mode"], grown["qkv_scale"]) == (40, "sqrt_n", None)
    from safetensors.torch import load_file

    keys = load_file(run_dir / "stages" / "s2" / "init" / "model.safetensors")["blocks.0.ffn.key_tokens"]
    assert keys.shape == (160, 32) and bool(keys[64:].abs().sum(-1).gt(0).all())  # every new key random
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
    (tmp_path / "stdout.txt").write_text(result.stdout)
    return tmp_path, path, tmp_path / "runs" / "e2e"


def test_piped_output_is_compact_lines_and_a_table_per_stage(single):
    tmp_path, _, run_dir = single
    out = (tmp_path / "stdout.txt").read_text()
    lines = out.splitlines()
    for stage in ("s1", "s2"):  # 6 steps: a line each (a tenth of a stage is under one step)
        steps = [line for line in lines if line.startswith(f"[{stage}] step ")]
        assert [line.split()[2] for line in steps] == [f"{s}/6" for s in range(1, 7)]
        assert all(" · ETA " in line and " tok/s · MFU " in line for line in steps)
        assert f"[{stage}] done" in [line.strip() for line in lines]
    assert "grad_norm" not in out and "DeepSpeed" not in out and "\x1b[" not in out  # worker.log has those
    assert "grad_norm" in (run_dir / "stages" / "s1" / "worker.log").read_text()
    assert f"wandb sync {run_dir}/wandb/offline-run-*" in out  # said once
    assert out.count("W&B logged offline") == 1


def test_train_one_process_end_to_end(single):
    _, _, run_dir = single
    check_finished_run(run_dir, world_size=1)
    # the grown stage started from the carried optimizer state and the grown weights
    spec = json.loads((run_dir / "stages" / "s2" / "spec.json").read_text())
    assert spec["init_weights"].endswith("s2/init") and spec["init_optimizer"].endswith(
        "optimizer.safetensors"
    )
    assert spec["tokens_offset"] == 6 * 8 * 32


def test_a_run_without_anneal_evaluates_at_0_every_interval_and_the_last_step(single):
    """(The anneal's own evaluations: test_anneal_evals.py.)"""
    _, _, run_dir = single
    for stage in ("s1", "s2"):
        spec = json.loads((run_dir / "stages" / stage / "spec.json").read_text())
        assert spec["tau"]["steps"] == 0 and spec["tau"]["kind"] == spec["model"]["scale_mode"]  # held
        steps = [r["step"] for r in records(run_dir) if r["kind"] == "eval" and r["stage"] == stage]
        assert steps == [0, 4, 6], stage


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
        f"error: {run_dir}: stages.1.steps: the run was made with 6, the recipe now says 4; use "
        "--set stages.1.steps=6 to continue this run, -o for a new run directory, or --force s2 to "
        "retrain from s2"
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


def test_a_run_made_before_paper_became_the_default_says_what_changed_and_continues(tmp_path):
    """A run whose grown stage was made with `init: preserve` (the default before), re-run with a recipe that
    does not say `init:`: one line naming the field and the three ways on; `--set` continues it."""
    two = {
        **RECIPE,
        "stages": [
            {"name": "s1", "param_tokens": 16, "steps": 2},
            {"name": "s2", "param_tokens": 40, "steps": 2},
        ],
        "train": {**RECIPE["train"], "peak_flops": PEAK_FLOPS},
    }
    path, result = train(tmp_path, "old", "--set", "stages.1.init=preserve", recipe=two)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    run_dir = tmp_path / "runs" / "old"
    assert yaml.safe_load((run_dir / "recipe.yaml").read_text())["stages"][1]["init"] == "preserve"
    before = (run_dir / "metrics.jsonl").read_text()
    again = run_tfctl("train", path, "-o", run_dir, cwd=tmp_path, env={"WANDB_MODE": "offline"})
    assert again.returncode == 2
    assert again.stderr.strip() == (
        f"error: {run_dir}: stages.1.init: the run was made with 'preserve', the recipe now says 'paper'; "
        "use --set stages.1.init=preserve to continue this run, -o for a new run directory, or --force s2 "
        "to retrain from s2"
    )
    assert (run_dir / "metrics.jsonl").read_text() == before  # nothing written
    kept = run_tfctl("train", path, "-o", run_dir, "--set", "stages.1.init=preserve", cwd=tmp_path)
    assert kept.returncode == 0 and kept.stdout.count("already done") == 2, kept.stderr[-2000:]


def test_eval_reproduces_the_final_val_loss(single):
    _, _, run_dir = single
    result = run_tfctl("eval", run_dir, "--json")
    assert result.returncode == 0, result.stderr
    final = [r for r in records(run_dir) if r["kind"] == "stage_end"][-1]
    assert json.loads(result.stdout)["loss"] == pytest.approx(final["val_loss"], abs=1e-5)


def test_grow_run_appends_and_trains_a_stage(single, tmp_path):
    import shutil

    _, path, run_dir = single
    copy = tmp_path / "grown"
    shutil.copytree(run_dir, copy, symlinks=True)
    result = run_tfctl("grow", copy, "--to", "120k", "--steps", "3", "--json", env={"WANDB_MODE": "disabled"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(result.stdout)  # --json: stdout is the JSON alone
    assert report["stage"] == "grown-120k" and report["params"] == pytest.approx(120_000, rel=0.02)
    state = json.loads((copy / "state.json").read_text())
    assert list(state["stages"]) == ["s1", "s2", "grown-120k"]
    assert all(s["status"] == "done" for s in state["stages"].values())
    growth = [r for r in records(copy) if r["kind"] == "growth"]
    assert growth[-1]["stage"] == "grown-120k" and growth[-1]["init"] == "paper"  # the default, as a recipe's
    # the original recipe still runs on the grown run: its stages are done, the appended one is kept
    result = run_tfctl("train", path, "-o", copy, env={"WANDB_MODE": "disabled"})
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.count("already done") == 2
        and "[grown-120k] past the end of this recipe" in result.stdout
    )
    assert [s["name"] for s in yaml.safe_load((copy / "recipe.yaml").read_text())["stages"]][
        -1
    ] == "grown-120k"


def test_train_two_processes_through_deepspeed(tmp_path):
    _, result = train(
        tmp_path,
        "e2e2",
        "--set",
        "launch.nproc_per_node=2",
        "--set",
        "launch.launcher=deepspeed",
        "--set",
        f"train.peak_flops={PEAK_FLOPS}",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    check_finished_run(tmp_path / "runs" / "e2e2", world_size=2)
    assert os.path.exists(tmp_path / "runs" / "e2e2" / "stages" / "s2" / "worker.log")


# the single run above measures the CPU's peak for MFU, as a user's run does; the runs below are given one
ONE_STAGE = {
    **RECIPE,
    "stages": [{"name": "s1", "param_tokens": 16, "steps": 6}],
    "train": {**RECIPE["train"], "peak_flops": PEAK_FLOPS},
}


def test_a_terminal_gets_a_live_bar_with_eta_and_no_per_step_lines(tmp_path):
    """The acceptance check: `script -qc "tfctl train RECIPE -o X" /dev/null` (stdout is a pseudo-terminal)."""
    import shlex
    import subprocess
    import sys

    from tests.conftest import REPO

    path = tmp_path / "pty.yaml"
    path.write_text(yaml.safe_dump({**ONE_STAGE, "name": "pty"}))
    command = shlex.join([sys.executable, "-m", "tfctl", "train", str(path), "-o", str(tmp_path / "run")])
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(REPO), "TERM": "xterm", "COLUMNS": "80"}
    result = subprocess.run(
        ["script", "-qfec", command, "/dev/null"], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:]
    out = result.stdout
    assert "ETA" in out and "━" in out and "\x1b[" in out  # a bar redrawn in place
    assert "[s1] step" not in out and "grad_norm" not in out  # no per-step lines of any kind
    assert "[s1] done" in out and "val ppl" in out  # the stage's table


def test_ctrl_c_says_how_to_resume_and_exits_130(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "long.yaml"
    recipe = {**ONE_STAGE, "name": "long", "stages": [{"name": "s1", "param_tokens": 16, "steps": 100000}]}
    path.write_text(yaml.safe_dump(recipe))
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "tfctl", "train", str(path), "-o", str(run_dir)],
        env={**os.environ, "WANDB_MODE": "disabled"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # Ctrl-C reaches the foreground process group: tfctl, not the ranks
        # a suite started in the background of a non-interactive shell inherits SIGINT ignored, and Python then
        # never turns SIGINT into KeyboardInterrupt: start tfctl as a terminal would
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while not (
        (run_dir / "metrics.jsonl").is_file() and '"train"' in (run_dir / "metrics.jsonl").read_text()
    ):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGINT)
    try:
        out, err = process.communicate(timeout=120)
    finally:  # a 100,000-step stage must not outlive a failed test (its rank stops when tfctl dies)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == "interrupted; re-run the same command to resume"
    assert "error" not in err and "exit 130" not in err


def test_eval_grow_and_generate_on_a_stage_inside_the_run(single, tmp_path):
    import torch

    from tfctl.data import load_tokenizer
    from tfctl.model_dir.weights import load_model
    from tfctl.run.eval_generate import generate

    _, _, run_dir = single
    final = run_dir / "stages" / "s1" / "final"
    spec = json.loads((run_dir / "stages" / "s1" / "spec.json").read_text())
    result = run_tfctl("eval", final, "--json")  # its stage's data, without --data
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["data"] == f"{spec['data_dir']} (val)"
    short = tmp_path / "short.txt"
    short.write_text("To be, or not")  # shorter than one window of 32: scored as one shorter window
    result = run_tfctl("eval", final, "--text", short, "--json")
    assert result.returncode == 0, result.stderr
    assert 0 < json.loads(result.stdout)["tokens"] < 32
    result = run_tfctl("grow", final, "--to", "60k", "-o", tmp_path / "grown", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["probe"] == f"val data ({spec['data_dir']})"
    # generation in chunks (for its progress bar) samples exactly what one call does
    text = generate(final, "To be", 70, seed=1)
    tokenizer, (model, _) = load_tokenizer(final), load_model(final)
    model.eval()
    ids = torch.tensor([tokenizer.encode("To be").ids])
    out = model.generate(ids, 70, temperature=0.8, top_k=50, generator=torch.Generator().manual_seed(1))
    assert text == tokenizer.decode(out[0].tolist())
