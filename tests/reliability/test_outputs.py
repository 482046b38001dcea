"""Issue 24, output directories (`export --hf`, `import -o`, `grow -o`; tfctl/outputs.py) through the real CLI:
`--force` adds tfctl's files to a user's folder and touches nothing else, an earlier output is replaced whole,
kill -9 mid-write leaves the output complete or absent and the next start removes the dead process's
temporary directory. The refusals themselves are rows of user_error_table.py. Tiny models, no training."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models

from tests.conftest import run_tfctl
from tests.reliability.conftest import ENV
from tfctl.data.tokenizer import EOS
from tfctl.growth.optimizer import flatten_moments
from tfctl.interop.hf_export import HF_FILES
from tfctl.model import build_model, config_from_dict
from tfctl.model_dir.optimizer_file import save_moments_file
from tfctl.model_dir.weights import load_model, save_model_dir

CONFIG = dict(vocab_size=512, seq_len=32, n_layers=2, d_model=32, n_heads=2, qkv_tokens=16, proj_tokens=16)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A tiny model directory with a tokenizer and an optimizer state (what `grow --optimizer carry` needs)."""
    root = tmp_path_factory.mktemp("outputs")
    tokenizer = root / "tokenizer.json"
    Tokenizer(models.WordLevel({EOS: 0, "a": 1}, unk_token=EOS)).save(str(tokenizer))
    config = config_from_dict({**CONFIG, "ffn_tokens": 64})
    torch.manual_seed(0)
    state = build_model(config).state_dict()
    out = save_model_dir(state, config, root / "model", tokenizer=tokenizer)
    moments = {
        name: {"exp_avg": torch.zeros_like(t), "exp_avg_sq": torch.ones_like(t)} for name, t in state.items()
    }
    save_moments_file(flatten_moments(moments), 7, out / "optimizer.safetensors")
    return out


def siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.glob(f".{out.name}.*"))


def assert_complete_export(out: Path) -> None:
    assert sorted(HF_FILES) == sorted(p.name for p in out.iterdir() if p.name in HF_FILES)
    assert json.loads((out / "config.json").read_text())["model_type"] == "tokenformer"


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_force_adds_the_export_beside_the_users_files_and_touches_nothing_else(model, tmp_path):
    folder = tmp_path / "mine"
    (folder / "sub").mkdir(parents=True)
    (folder / "precious.txt").write_text("keep me\n")
    (folder / "sub" / "notes.md").write_text("mine\n")
    result = run_tfctl("export", model, "--hf", folder, env=ENV)
    assert result.returncode == 2 and "--force" in result.stderr, result.stderr
    result = run_tfctl("export", model, "--hf", folder, "--force", env=ENV)
    assert result.returncode == 0, result.stderr
    assert_complete_export(folder)
    # now an earlier export with the user's files beside it: replaced without --force, the user's kept
    result = run_tfctl("export", model, "--hf", folder, env=ENV)
    assert result.returncode == 0, result.stderr
    assert_complete_export(folder)
    assert (folder / "precious.txt").read_text() == "keep me\n" and (folder / "sub" / "notes.md").is_file()
    assert siblings(folder) == []


def test_an_earlier_export_is_replaced_whole_and_dot_is_a_name(model, tmp_path):
    out = tmp_path / "hf"
    assert run_tfctl("export", model, "--hf", out, env=ENV).returncode == 0
    (out / "README.md").write_text("stale card")  # tfctl's own file: replaced
    assert run_tfctl("export", model, "--hf", out, env=ENV).returncode == 0
    assert_complete_export(out)
    assert (out / "README.md").read_text() != "stale card" and siblings(out) == []
    here = tmp_path / "empty"
    here.mkdir()
    result = run_tfctl("export", model, "--hf", ".", cwd=here, env=ENV)  # was: ValueError, empty name
    assert result.returncode == 0, result.stderr
    assert_complete_export(here)


def test_temporary_dirs_of_dead_processes_are_removed_and_a_set_aside_export_put_back(model, tmp_path):
    out = tmp_path / "hf"
    assert run_tfctl("export", model, "--hf", out, env=ENV).returncode == 0
    pid = dead_pid()
    os.replace(out, tmp_path / f".hf.old-{pid}")  # killed between the two renames of a replacement
    (tmp_path / f".hf.tmp-{pid}").mkdir()  # and one killed while writing
    (tmp_path / f".hf.tmp-{pid}" / "config.json").write_text("{}")
    (tmp_path / ".hf.tmp-1").mkdir()  # pid 1 is alive: someone's write in progress, left alone
    result = run_tfctl("export", model, "--hf", out, env=ENV)
    assert result.returncode == 0, result.stderr
    assert_complete_export(out)
    assert siblings(out) == [".hf.tmp-1"]


def kill_when(command: list, condition, timeout: float = 240.0) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "tfctl", *map(str, command)],
        env={**os.environ, **ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while not condition() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    return process


def test_kill_9_during_export_leaves_it_complete_or_absent_and_the_next_start_cleans(model, tmp_path):
    out = tmp_path / "hf"
    assert run_tfctl("export", model, "--hf", out, env=ENV).returncode == 0  # an earlier export to replace
    kill_when(["export", model, "--hf", out], lambda: siblings(out))
    if out.exists():
        assert_complete_export(out)  # the earlier one or the new one, never a mix or config files only
    result = run_tfctl("export", model, "--hf", out, env=ENV)
    assert result.returncode == 0, result.stderr
    assert_complete_export(out)
    assert siblings(out) == []


def test_kill_9_during_grow_leaves_it_complete_or_absent_and_the_next_start_cleans(model, tmp_path):
    out = tmp_path / "gc"
    command = ["grow", model, "--to", "2m", "--optimizer", "carry", "-o", out]
    kill_when(command, lambda: siblings(out))
    if out.exists():  # complete: weights that load, and the optimizer its export.json says was carried
        load_model(out)
        assert json.loads((out / "export.json").read_text())["growth"]["optimizer"] == "carry"
        assert (out / "optimizer.safetensors").is_file()
    else:
        assert siblings(out), "the kill landed after the temporary directory was gone"
        result = run_tfctl(*command, env=ENV)
        assert result.returncode == 0, result.stderr
        assert (out / "optimizer.safetensors").is_file()
    assert siblings(out) == []


def test_import_into_an_earlier_import_replaces_it_and_never_the_users_folder(tmp_path):
    from tests.reliability.user_error_table import official_checkpoint

    checkpoint = tmp_path / "ck.pt"
    torch.save(official_checkpoint(config_from_dict({**CONFIG, "ffn_tokens": 64})), checkpoint)
    out = tmp_path / "imported"
    for _ in range(2):  # the second replaces the first (tfctl's own model directory)
        result = run_tfctl("import", checkpoint, "-o", out, "--heads", "2", env=ENV)
        assert result.returncode == 0, result.stderr
    load_model(out)
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me\n")
    result = run_tfctl("import", checkpoint, "-o", folder, "--heads", "2", "--force", env=ENV)
    assert result.returncode == 0, result.stderr
    load_model(folder)
    assert (folder / "precious.txt").read_text() == "keep me\n" and siblings(out) == siblings(folder) == []


@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    path.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if result.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.parametrize("options", ["size=64k", "size=1m,ro"], ids=["disk-full", "read-only"])
@pytest.mark.parametrize("command", ["export", "import"])
def test_a_full_or_read_only_disk_is_one_line_naming_the_output_and_leaves_nothing(
    model, tmp_path, options, command
):
    from tests.reliability.user_error_table import official_checkpoint

    checkpoint = tmp_path / "ck.pt"
    torch.save(official_checkpoint(config_from_dict({**CONFIG, "ffn_tokens": 64})), checkpoint)
    with tmpfs(tmp_path / "disk", options) as disk:
        out = disk / "out"
        args = (
            ["export", model, "--hf", out]
            if command == "export"
            else ["import", checkpoint, "-o", out, "--heads", "2"]
        )
        result = run_tfctl(*args, env=ENV)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"error: {out}: ") and ("No space" in line or "Read-only" in line), line
        assert list(disk.iterdir()) == []
