import os
from pathlib import Path

import pytest

from tests.tfctl_processes import close_servers, run_tfctl_process

# One OpenMP thread in every process of the suite (its own, and every command and rank it starts; set before
# torch loads): the tiny models here gain nothing from a second thread, and on a busy 2-core machine threads
# that wait for each other at every barrier made a forward pass 60-120x slower (1.2 ms vs 75-140 ms, load 4).
# The multi-thread settings of a rank (GOMP_SPINCOUNT) are tests/launch/test_launch.py's.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
# `train.peak_flops` of the test recipes: MFU divides by it instead of a CPU peak measured before the first stage
# (1-3 s of every core per run, taken up to three times on a busy machine). One run measures for real:
# tests/run/test_train.py's `single`.
PEAK_FLOPS = 1.0e12


def run_tfctl(*args, cwd=None, timeout=600, env=None):
    """The real command line, as a user runs it: `python -m tfctl ARGS` in a process of its own, its exit code
    and streams (forked from a server that has imported tfctl and torch: tests/tfctl_processes.py)."""
    environment = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline"), **(env or {})}
    return run_tfctl_process(args, cwd=cwd, env=environment, timeout=timeout)


@pytest.fixture(scope="session", autouse=True)
def tfctl_servers():
    yield
    close_servers()


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


@pytest.fixture(scope="session")
def user_error_table(request, tmp_path_factory):
    """The bad-input table of tests/reliability/test_user_errors.py (~100 CLI runs, one process each), started
    with the session when that file is selected (`start_user_error_table`): it runs in the background while the
    other tests run, so its tests find it done. Alone, it runs two cases at a time."""
    items = request.session.items
    cases = [item for item in items if item.module.__name__.endswith("test_user_errors")]
    if not cases:
        return None
    from tests.reliability.user_error_table import Table

    return Table(tmp_path_factory.mktemp("user-errors"), jobs=2 if len(cases) == len(items) else 1)


@pytest.fixture(scope="session", autouse=True)
def start_user_error_table(request):
    """Start the user-error table with the session; under pytest-xdist the worker that runs its tests starts it
    at the first of them (every worker collects every test, one runs them)."""
    if not hasattr(request.config, "workerinput"):
        request.getfixturevalue("user_error_table")


TINY_RECIPE = """\
name: tiny
seed: 7
data: {source: shakespeare, tokenizer: "bpe:512", seq_len: 32}
model: {d_model: 32, n_layers: 2, n_heads: 4}
stages:
  - {name: s1, param_tokens: 16, steps: 20}
  - {name: s2, param_tokens: 48, steps: 20, init: preserve}   # exact growth: its tests read a zero jump
train: {global_batch: 8, lr: 3.0e-3, min_lr: 3.0e-4, warmup: 0.1, eval_interval: 10, eval_batches: 2,
        eval_batch_size: 8, checkpoint_interval: 100, peak_flops: 1.0e+12}
wandb: {mode: disabled}
baseline:
  - {name: scratch}
"""


@pytest.fixture(scope="session")
def growth_run(tmp_path_factory):
    """runs/tiny: two Tokenformer stages (20 steps each), trained once with `train_recipe`."""
    from tfctl.recipe import load_recipe
    from tfctl.run.orchestrate import train_recipe

    root = tmp_path_factory.mktemp("compare")
    recipe = root / "tiny.yaml"
    recipe.write_text(TINY_RECIPE)
    run_dir = root / "runs" / "tiny"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "disabled")
        train_recipe(load_recipe(recipe), run_dir=run_dir, say=lambda line: None)
    return run_dir
