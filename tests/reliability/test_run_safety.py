"""Issue 15's faults on a finished run, through the real `python -m tfctl`: nothing outside the run is ever
touched, a crash half-way through --force leaves a state the next command repairs, stale checkpoints and
changed data are refused, a stage dropped from a recipe has a way out, a full disk is one line.

Each test copies the session's reference run (conftest.py); only the torn-metrics --force test trains."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import tfctl.run.stage_loop
from tests.conftest import run_tfctl
from tests.reliability.conftest import ENV, RECIPE, records, write_recipe
from tfctl.compare.pipeline import compare_run
from tfctl.data import load_prepared
from tfctl.data.prepare import owned_name, remove_stale_work
from tfctl.errors import UserError
from tfctl.model_dir.config import is_model_dir
from tfctl.recipe import load_recipe
from tfctl.run.layout import RunDir
from tfctl.run.orchestrate import check_unchanged, growth_job
from tfctl.run.stage_loop import StageLoop
from tfctl.run.state import RunState
from tfctl.tracking.metrics_file import MetricsFile
from tfctl.worker.checkpoint import Checkpointer

pytestmark = pytest.mark.slow  # the reference run is a real 2-stage training


def one_line_error(result, code: int = 2) -> str:
    assert result.returncode == code and "Traceback" not in result.stderr, result.stderr[-3000:]
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: ") and result.stderr.count("error: ") == 1, result.stderr[-3000:]
    return line


@pytest.fixture
def run(reference, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(reference, copy, symlinks=True)
    return copy


@pytest.fixture
def recipe(tmp_path) -> Path:
    return write_recipe(tmp_path / "chaos.yaml")


def edit_state(run: Path, edit) -> None:
    state = json.loads((run / "state.json").read_text())
    edit(state)
    (run / "state.json").write_text(json.dumps(state))


@pytest.mark.parametrize("name", ["../../victim", "../../victim/important", "/victim-abs"])
def test_a_hostile_stage_name_in_state_json_deletes_nothing(run, recipe, tmp_path, name):
    victim = tmp_path / "victim" / "important"
    victim.mkdir(parents=True)
    (victim / "data.txt").write_text("precious\n")
    edit_state(run, lambda s: s["stages"].update({name: {"status": "done"}}))
    line = one_line_error(run_tfctl("train", recipe, "-o", run, "--force", "s2", env=ENV))
    assert "not a stage name" in line and "state.json" in line
    assert (victim / "data.txt").read_text() == "precious\n" and (run / "stages" / "s2" / "final").is_dir()


def test_a_stages_link_out_of_the_run_is_never_deleted_through(run, recipe, tmp_path):
    outside = tmp_path / "elsewhere"
    shutil.move(run / "stages", outside)
    (run / "stages").symlink_to(outside)
    line = one_line_error(run_tfctl("train", recipe, "-o", run, "--force", "s2", env=ENV))
    assert "outside" in line and (outside / "s2" / "final" / "model.safetensors").is_file()


class Crash(BaseException):
    """A process killed at this point (nothing after it runs)."""


@pytest.mark.parametrize("at", ["rename", "metrics", "state", "set-aside"])
def test_force_crashed_at_any_point_is_repaired_by_the_next_command(run, monkeypatch, at):
    """`--force s2` interrupted at each step of restart_from (a torn metrics line in the file too): the same
    command repeated finishes the job; the state never says done for a stage whose directory is gone."""
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"kind": "train", "stage": "s2", "st')  # the torn last line of a killed writer
    recipe = load_recipe(run / "recipe.yaml")
    monkeypatch.setattr(tfctl.run.stage_loop, "run_stage", lambda *args, **kwargs: 1)

    data_dir = Path(RunState.load(RunDir(run).state, "chaos").data["data_dir"])

    def loop() -> StageLoop:
        job = growth_job(recipe, run, data_dir, load_prepared(data_dir).vocab_size)
        return StageLoop(job, RunState.load(RunDir(run).state, "chaos"), say=lambda line: None)

    def crash(*args, **kwargs):
        raise Crash

    targets = {
        "rename": (tfctl.run.stage_loop.os, "replace"),
        "metrics": (MetricsFile, "drop_stages"),
        "state": (RunState, "drop"),
        "set-aside": (tfctl.run.stage_loop.StageLoop, "remove_set_aside"),
    }
    with monkeypatch.context() as patch:
        patch.setattr(*targets[at], crash)
        with pytest.raises(Crash):
            check_unchanged(loop(), "s2")
    state = RunState.load(RunDir(run).state, "chaos")
    if state.stages().get("s2", {}).get("status") == "done" and not is_model_dir(RunDir(run).final("s2")):
        with pytest.raises(UserError, match="--force s2"):  # never trusted: refused with the way out
            loop().run()
    check_unchanged(loop(), "s2")  # the same command again
    state = RunState.load(RunDir(run).state, "chaos")
    assert "s2" not in state.stages() and state.stages()["s1"]["status"] == "done"
    assert not (run / "stages" / "s2").exists() and RunDir(run).set_aside() == []
    assert records(run, "stage_end", "s2") == [] and records(run, "stage_end", "s1")


def test_torn_metrics_then_force_retrains_for_real(run, recipe):
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"kind": "eval", "stage": "s2", "val_lo')
    result = run_tfctl("train", recipe, "-o", run, "--force", "s2", env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(records(run, "stage_end", "s2")) == 1
    state = json.loads((run / "state.json").read_text())["stages"]
    assert state["s2"]["status"] == "done" and state["s2"]["result"] == records(run, "stage_end", "s2")[0]


def test_checkpoints_of_other_settings_are_refused_not_resumed(run, recipe):
    (run / "state.json").unlink()
    line = one_line_error(run_tfctl("train", recipe, "-o", run, "--set", "train.lr=0.002", env=ENV))
    assert "written under other settings" in line and "--force s1" in line
    assert not (run / "state.json").exists()  # refused before anything was written


def test_compare_takes_its_numbers_from_state_json_when_metrics_is_torn(reference, run):
    expected = compare_run(reference, with_runs=[reference], wandb=False, say=lambda line: None)["runs"]
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join(lines[: len(lines) // 2]) + '\n{"kind": "stage_e')
    report = compare_run(run, with_runs=[reference], wandb=False, say=lambda line: None)
    for key in ("val_ppl", "tokens", "flops", "stages", "params"):
        assert report["runs"][0][key] == expected[0][key], key


def test_changed_prepared_data_is_refused(run, recipe):
    edit_state(run, lambda s: s.update(data_dir=str(Path(s["data_dir"]).with_name("0123456789abcdef"))))
    line = one_line_error(run_tfctl("train", recipe, "-o", run, env=ENV))
    assert "prepared data changed" in line and "--force s1" in line


def test_grow_on_a_truncated_export_writes_nothing(run):
    weights = run / "stages" / "s2" / "final" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    before = {p: (run / p).read_bytes() for p in ("recipe.yaml", "state.json", "metrics.jsonl")}
    line = one_line_error(run_tfctl("grow", run, "--to", "60k", env=ENV))
    assert "model.safetensors" in line and ".recipe-grow" not in line
    assert {p: (run / p).read_bytes() for p in before} == before and not (run / "stages" / "60k").exists()


def test_a_stage_dropped_from_the_recipe_has_a_way_out(run, tmp_path):
    """A recipe without the run's last stage keeps it (as if appended by `grow`); `--force` drops it."""
    shorter = write_recipe(tmp_path / "short.yaml", {**RECIPE, "stages": RECIPE["stages"][:1]})
    result = run_tfctl("train", shorter, "-o", run, env=ENV)
    assert result.returncode == 0 and "kept" in result.stdout, result.stderr[-3000:]
    result = run_tfctl("train", shorter, "-o", run, "--force", "s2", env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    assert list(json.loads((run / "state.json").read_text())["stages"]) == ["s1"]
    assert not (run / "stages" / "s2").exists() and records(run, "stage_end", "s2") == []
    assert [s["name"] for s in yaml.safe_load((run / "recipe.yaml").read_text())["stages"]] == ["s1"]


def test_generate_a_long_output_in_chunks(run):
    """More than one sampling chunk (progress shows on a terminal only): the same command, one result."""
    result = run_tfctl("generate", run, "-p", "to be", "-n", "300", env=ENV)
    assert result.returncode == 0 and result.stdout.strip(), result.stderr[-2000:]


def test_a_non_utf8_latest_file_is_no_tag(tmp_path):
    (tmp_path / "step00000002").mkdir()
    (tmp_path / "latest").write_bytes(b"\xff\xfe\x00step")
    assert Checkpointer(tmp_path, keep=2, rank=0).latest_tag() is None
    (tmp_path / "latest").write_text("../../etc")
    assert Checkpointer(tmp_path, keep=2, rank=0).latest_tag() is None


def test_stale_partial_data_dirs_of_dead_processes_are_removed(tmp_path):
    target = tmp_path / "0123456789abcdef"
    dead = Path(str(owned_name(target, "partial")).replace(f"-{os.getpid()}-", "-999999999-"))
    alive, foreign = owned_name(target, "partial"), tmp_path / f".{target.name}.partial-otherhost-1-x"
    for path in (dead, alive, foreign):
        path.mkdir()
    remove_stale_work(target)
    assert not dead.exists() and alive.exists() and foreign.exists()


def mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")


def test_a_really_full_disk_is_one_line_and_the_stage_marked_failed(recipe, tmp_path):
    disk = tmp_path / "disk"
    mount_tmpfs(disk, "1m")  # the run needs ~3.5 MB: full during stage s1's checkpoints
    try:
        line = one_line_error(run_tfctl("train", recipe, "-o", disk / "run", env=ENV), code=1)
        assert "stage s1" in line and ("No space left" in line or "checkpoint save failed" in line)
        state = json.loads((disk / "run" / "state.json").read_text())["stages"]["s1"]
        assert state["status"] == "failed"
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_read_only_checkpoints_dir_is_one_line(run, recipe):
    checkpoints = run / "stages" / "s2" / "checkpoints"
    saved = run.parent / "saved-checkpoints"
    shutil.copytree(checkpoints, saved)
    edit_state(run, lambda s: s["stages"]["s2"].update(status="training") or s["stages"]["s2"].pop("result"))
    mount_tmpfs(checkpoints, "4m")
    try:
        shutil.copytree(saved, checkpoints, dirs_exist_ok=True)
        subprocess.run(["mount", "-o", "remount,ro", str(checkpoints)], check=True)
        line = one_line_error(run_tfctl("train", recipe, "-o", run, env=ENV))
        assert "not writable" in line
    finally:
        subprocess.run(["umount", "-l", str(checkpoints)], check=False)
