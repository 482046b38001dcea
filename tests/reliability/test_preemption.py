"""SIGTERM to every process of `tfctl train` mid-stage, as Slurm sends at a preemption or the time limit: the
rank saves the step it is on, `tfctl train` exits 75 (EXIT_PREEMPTED) with one line, and the same command
resumes to the uninterrupted reference run's losses and weights, bit for bit."""

import json
import signal

import psutil
import pytest
import torch
from safetensors.torch import load_file

from tests.reliability.conftest import Train, records
from tfctl.stage.exit_codes import EXIT_PREEMPTED

pytestmark = pytest.mark.slow  # real `tfctl train` runs


def test_sigterm_to_every_process_checkpoints_exits_75_and_resumes_identically(
    recipe_file, reference, tmp_path
):
    run_dir = tmp_path / "run"
    train = Train(recipe_file, run_dir)
    train.wait_for(lambda: any(r["step"] >= 3 for r in records(run_dir, "train", "s1")))
    everyone = [
        psutil.Process(train.process.pid),
        *psutil.Process(train.process.pid).children(recursive=True),
    ]
    for process in everyone:
        process.send_signal(signal.SIGTERM)
    assert train.finish() == EXIT_PREEMPTED, train.output()
    errors = [line for line in train.output().splitlines() if line.startswith("error:")]
    (stopped,) = [r for r in records(run_dir, "error", "s1") if "preempted at step" in r["message"]]
    assert 3 <= stopped["step"] < 8
    assert errors == [
        f"error: stage s1: preempted at step {stopped['step']}/8, checkpoint step{stopped['step']:08d} saved; "
        "run the same command again (or requeue the job) to resume"
    ], train.output()
    state = json.loads((run_dir / "state.json").read_text())["stages"]["s1"]
    assert (state["status"], state["error"], state["exit_code"]) == ("failed", "preempted", EXIT_PREEMPTED)
    assert not (run_dir / "stages" / "s2").exists()  # no later stage started

    again = Train(recipe_file, run_dir)
    assert again.finish() == 0, again.output()
    for stage in ("s1", "s2"):
        resumed = {r["step"]: r["loss"] for r in records(run_dir, "train", stage)}
        assert resumed == {r["step"]: r["loss"] for r in records(reference, "train", stage)}, stage
    final = load_file(str(run_dir / "stages" / "s2" / "final" / "model.safetensors"))
    expected = load_file(str(reference / "stages" / "s2" / "final" / "model.safetensors"))
    assert final.keys() == expected.keys() and all(torch.equal(final[k], expected[k]) for k in expected)
