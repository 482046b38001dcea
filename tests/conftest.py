import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"


def run_tfctl(*args, cwd=None, timeout=600, env=None):
    """The real command line, as a user runs it: a fresh interpreter, exit code and streams."""
    environment = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tfctl", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )


@pytest.fixture
def tfctl():
    return run_tfctl


@pytest.fixture(scope="session", autouse=True)
def session_peak_cache(tmp_path_factory):
    """The session's cache of the best CPU peak (tfctl.run.machine_peaks), set before any session fixture
    trains: no test reads or raises the user's."""
    os.environ["TFCTL_PEAK_CACHE"] = str(tmp_path_factory.mktemp("peaks") / "cpu_peaks.json")


@pytest.fixture
def machine_peak_cache(tmp_path, monkeypatch):
    """A test's own, empty cache of the best CPU peak."""
    path = tmp_path / "cpu_peaks.json"
    monkeypatch.setenv("TFCTL_PEAK_CACHE", str(path))
    return path


@pytest.fixture(scope="session", autouse=True)
def user_error_table(request, tmp_path_factory):
    """The bad-input table of tests/reliability/test_user_errors.py (~60 CLI runs, one subprocess each), started
    with the session when that file is selected: it runs in the background on the core the test process
    leaves idle, so its tests find it done. Alone, it runs two cases at a time."""
    items = request.session.items
    cases = [item for item in items if item.module.__name__.endswith("test_user_errors")]
    if not cases:
        return None
    from tests.reliability.user_error_table import Table

    return Table(tmp_path_factory.mktemp("user-errors"), jobs=2 if len(cases) == len(items) else 1)
