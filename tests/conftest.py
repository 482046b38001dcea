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
