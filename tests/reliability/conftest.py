"""Shared pieces of the fault-injection tests: a tiny 2-stage recipe, `tfctl train` as a killable process
group, and ONE uninterrupted reference run that every interrupted run must reproduce."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.conftest import PEAK_FLOPS, run_tfctl

RECIPE = {
    "name": "chaos",
    "data": {"source": "shakespeare", "tokenizer": "bpe:512", "seq_len": 32},
    "model": {"d_model": 32, "n_layers": 2, "n_heads": 2},
    "stages": [
        {"name": "s1", "param_tokens": 16, "steps": 8},
        {"name": "s2", "param_tokens": 32, "steps": 8},
    ],
    "train": {
        "global_batch": 4,
        "checkpoint_interval": 2,
        "keep_checkpoints": 2,
        "eval_interval": 4,
        "eval_batches": 2,
        "eval_batch_size": 4,
        "lr": 3.0e-3,
        "min_lr": 3.0e-4,
        "peak_flops": PEAK_FLOPS,
    },
}
ENV = {"WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}


def write_recipe(path: Path, recipe: dict = RECIPE) -> Path:
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def records(run_dir: Path, kind: str, stage: str | None = None) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    found = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # the torn last line of a killed writer
        if record.get("kind") == kind and stage in (None, record.get("stage")):
            found.append(record)
    return found


def stage_end(run_dir: Path, stage: str) -> dict:
    (end,) = records(run_dir, "stage_end", stage)
    return end


class Train:
    """`tfctl train` in a session of its own, as a user's shell would start it (its pgid is its pid)."""

    def __init__(self, recipe: Path, run_dir: Path, env: dict | None = None, *args):
        self.log = open(run_dir.parent / f"{run_dir.name}-{time.monotonic_ns()}.out", "w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tfctl", "train", str(recipe), "-o", str(run_dir), *args],
            env={**os.environ, **ENV, **(env or {})},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_for(self, condition, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, (
                f"tfctl train ended (exit {self.process.returncode}) first:\n{self.output()}"
            )
            assert time.monotonic() < deadline, f"timed out waiting:\n{self.output()}"
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL tfctl train's process group, as `kill -9 -PGID` would; the ranks (their own group, under
        the launcher) must follow on their own within seconds."""
        ranks = psutil.Process(self.process.pid).children(recursive=True)
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        _, alive = psutil.wait_procs(ranks, timeout=15)
        for process in alive:  # never leave them running, even when the test fails
            process.kill()
        assert not alive, f"ranks outlived a SIGKILLed tfctl train: {alive}"

    def finish(self, timeout: float = 300.0) -> int:
        return self.process.wait(timeout)

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()


@pytest.fixture(scope="session")
def recipe_file(tmp_path_factory) -> Path:
    return write_recipe(tmp_path_factory.mktemp("recipe") / "chaos.yaml")


@pytest.fixture(scope="session")
def reference(recipe_file, tmp_path_factory) -> Path:
    """The uninterrupted run: what every interrupted, corrupted or resumed run must reproduce."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    result = run_tfctl("train", recipe_file, "-o", run_dir, env=ENV)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return run_dir
