"""One `tfctl train` per run directory; a lock whose holder died is taken over."""

import json
import os
import subprocess
import sys

import pytest

from tfctl.errors import UserError
from tfctl.run.lock import RunLock


def test_second_holder_is_refused_in_one_line(tmp_path):
    with RunLock(tmp_path / ".lock"):
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path\n"
                "from tfctl.run.lock import RunLock\n"
                f"RunLock(Path({str(tmp_path / '.lock')!r})).__enter__()",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert other.returncode != 0 and f"{tmp_path}: in use by tfctl (pid {os.getpid()}" in other.stderr
        with pytest.raises(UserError, match="in use by tfctl"):
            RunLock(tmp_path / ".lock").__enter__()
    assert not (tmp_path / ".lock").exists()


def test_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (tmp_path / ".lock").write_text(json.dumps({"pid": int(dead.stdout), "host": "here", "since": "then"}))
    with RunLock(tmp_path / ".lock") as lock:
        assert lock.held and json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()


def test_a_killed_holder_releases_the_lock(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path\n"
            "from tfctl.run.lock import RunLock\n"
            f"RunLock(Path({str(tmp_path / '.lock')!r})).__enter__(); print('held', flush=True); "
            "time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(UserError, match=f"in use by tfctl \\(pid {holder.pid} "):
        RunLock(tmp_path / ".lock").__enter__()
    holder.kill()
    holder.wait()
    with RunLock(tmp_path / ".lock") as lock:
        assert lock.held
