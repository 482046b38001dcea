"""DeepSpeed op build locks: a stale one is reported in one line naming the file, never waited on forever."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from torch.utils.file_baton import FileBaton

from tfctl.errors import UserError
from tfctl.stage.extensions import (
    bound_torch_lock_waits,
    check_build_locks,
    use_environment_extensions_dir,
    wait_for_build_lock,
)

# a builder as torch's FileBaton is one: creates the lock with O_EXCL, holds it open, removes it when done
HOLDER = (
    "import os, sys, time; fd = os.open(sys.argv[1], os.O_CREAT | os.O_EXCL); print('held', flush=True); "
    "time.sleep(float(sys.argv[2])); os.close(fd); os.remove(sys.argv[1])"
)


TWO_RANKS = {
    "name": "locked",
    "data": {"source": "shakespeare", "tokenizer": "bpe:512", "seq_len": 32},
    "model": {"d_model": 32, "n_layers": 2, "n_heads": 2},
    "stages": [{"name": "s1", "param_tokens": 16, "steps": 2}],
    "train": {"global_batch": 4},
    "launch": {"nproc_per_node": 2},
}


def hold(lock, seconds: float) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock), str(seconds)], stdout=subprocess.PIPE
    )
    assert process.stdout.readline().strip() == b"held"
    return process


def plant_stale_lock(root):
    lock = root / "deepspeed_shm_comm" / "lock"
    lock.parent.mkdir(parents=True)
    lock.touch()  # what a SIGKILLed build leaves: the file, and nobody holding it
    return lock


def test_a_stale_lock_is_reported_naming_the_file(tmp_path):
    lock = plant_stale_lock(tmp_path)
    with pytest.raises(UserError, match=f"{lock}: stale lock .* delete the file and re-run"):
        wait_for_build_lock(lock, timeout=600)
    with pytest.raises(UserError, match=f"{lock}: stale lock"):
        check_build_locks(tmp_path)
    assert lock.exists()  # reported, not deleted: it is outside the run directory


def test_torch_extension_loader_waits_through_the_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(FileBaton, "wait", FileBaton.wait)  # restored after the test
    bound_torch_lock_waits()
    lock = plant_stale_lock(tmp_path)
    baton = FileBaton(str(lock))
    assert not baton.try_acquire()
    with pytest.raises(UserError, match="stale lock"):
        baton.wait()


def test_a_held_lock_is_waited_on_with_a_message_until_the_timeout(tmp_path):
    lock = tmp_path / "lock"
    holder = hold(lock, 60)
    try:
        messages = []
        with pytest.raises(
            UserError, match=rf"{lock}: still locked after 1 s \(held by pid \[{holder.pid}\]\)"
        ):
            wait_for_build_lock(lock, timeout=1, poll=0.1, say=messages.append)
        assert messages == [f"waiting for {lock}: pid [{holder.pid}] is building a DeepSpeed op"]
        check_build_locks(tmp_path)  # held by a live build: not stale
    finally:
        holder.kill()
        holder.wait()


def test_the_wait_ends_when_the_build_releases_the_lock(tmp_path):
    lock = tmp_path / "lock"
    holder = hold(lock, 1)
    wait_for_build_lock(lock, timeout=600, poll=0.1, say=lambda _: None)
    assert not lock.exists() and holder.wait() == 0


def test_a_multi_rank_train_refuses_a_stale_lock_in_one_line(tmp_path, tfctl):
    """Through the real CLI: exit 2, one line naming the lock, no rank started."""
    lock = plant_stale_lock(tmp_path / "ext")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(TWO_RANKS))
    result = tfctl(
        "train",
        recipe,
        "-o",
        tmp_path / "run",
        cwd=tmp_path,
        env={"TORCH_EXTENSIONS_DIR": str(tmp_path / "ext")},
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: {lock}: stale lock of a DeepSpeed op build that was "
        "killed (no process holds it); delete the file and re-run"
    ]
    assert not (tmp_path / "run" / "stages" / "s1" / "worker.log").exists()


def test_ops_are_built_in_this_environment_with_its_own_ninja(tmp_path, monkeypatch):
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert use_environment_extensions_dir() == Path(sys.prefix) / "torch_extensions"
    tools = Path(sys.executable).parent
    if (tools / "ninja").is_file():
        assert os.environ["PATH"] == f"{tools}:/usr/bin:/bin"
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    assert use_environment_extensions_dir() == tmp_path  # an explicit directory wins
