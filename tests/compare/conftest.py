"""The first `tfctl compare` of the session's tiny growth run (`growth_run`, tests/conftest.py)."""

import time

import pytest


@pytest.fixture(scope="session")
def compared(growth_run):
    """The first `tfctl compare` of runs/tiny: trains the scratch baseline; logs to W&B offline."""
    from tfctl.compare import compare_run

    lines: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "offline")
        started = time.perf_counter()
        report = compare_run(growth_run, say=lines.append)
        seconds = time.perf_counter() - started
    return report, lines, seconds
