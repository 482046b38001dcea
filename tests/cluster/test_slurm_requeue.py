"""The whole Slurm path on this machine: `tfctl submit` → the stub sbatch runs RUN/submit.slurm as a job of 2
"nodes" (127.0.0.1, 127.0.0.2) → `tfctl train` → stub srun → one torchrun agent per node → 2×1 ranks of a
2-stage tiny recipe. Mid-stage the batch shell gets Slurm's warning (SIGUSR1, as `--signal=B:USR1@…` sends it):
both ranks save the step they are on, the job requeues itself (`scontrol requeue`), and the requeued job
resumes. The losses and the final weights equal an uninterrupted run of 2 ranks, bit for bit."""

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.cluster.slurm_stub import FIRST_JOB_ID, STATE, install
from tests.conftest import run_tfctl
from tests.reliability.conftest import RECIPE, records, write_recipe
from tfctl.slurm import PORT_BASE, PORT_SPAN
from tfctl.stage.preemption import STOP_FILE

pytestmark = pytest.mark.slow  # two 2-rank runs of a 2-stage recipe, one of them requeued

ENV = {"WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
SLURM_RECIPE = {**RECIPE, "name": "slurm", "stages": [dict(s, steps=12) for s in RECIPE["stages"]]}


def free_job_id() -> int:
    """A job id whose rendezvous port (PORT_BASE + id mod PORT_SPAN) is free now: this test's own port."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if PORT_BASE <= port < PORT_BASE + PORT_SPAN:
            return port - PORT_BASE
    for job_id in range(7000, PORT_SPAN):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", PORT_BASE + job_id))
                return job_id
            except OSError:
                continue
    raise RuntimeError("no free port")


def wait_for(condition, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting for {what}:\n{log.read_text()[-4000:] if log.exists() else ''}"
            )
        time.sleep(0.05)


def test_preempted_job_requeues_and_resumes_bit_identically(tmp_path):
    recipe = write_recipe(tmp_path / "slurm.yaml", SLURM_RECIPE)

    # the uninterrupted reference: one node of 2 ranks (2 torchrun agents of 1 equal it, test_multinode.py)
    reference = tmp_path / "reference"
    result = run_tfctl(
        "train", recipe, "-o", reference, "--set", "launch.launcher=torchrun", "--set", "launch.nproc_per_node=2",
        env=ENV,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    bin_dir, state = tmp_path / "bin", tmp_path / "slurm"
    install(bin_dir, state)
    job_id = free_job_id()
    env = {**ENV, "PATH": f"{bin_dir}:{os.environ['PATH']}", STATE: str(state), FIRST_JOB_ID: str(job_id)}
    run = tmp_path / "run"
    submitted = run_tfctl(
        "submit", recipe, "-o", run, "-N", "2", "-g", "0", "-t", "30", "--signal-minutes", "1", env=env
    )
    assert submitted.returncode == 0, submitted.stderr
    assert submitted.stdout.startswith(f"submitted job {job_id}:")
    log = run / f"slurm-{job_id}.out"

    # Slurm's warning to the batch shell, while s1 trains (after its step-4 checkpoint, before step 12)
    wait_for(lambda: any(r["step"] >= 5 for r in records(run, "train", "s1")), 600, "s1 step 5", log)
    restart, batch_pid = (state / f"job-{job_id}.pid").read_text().split()
    assert restart == "0"
    os.kill(int(batch_pid), signal.SIGUSR1)

    wait_for(lambda: (state / f"job-{job_id}.done").exists(), 900, "the job's end", log)
    output = log.read_text()
    assert (state / f"job-{job_id}.done").read_text() == "0", output[-4000:]
    assert "on 2 node(s): 127.0.0.1 127.0.0.2" in output
    assert "stop requested, checkpointing" in output
    assert f"preempted with a checkpoint saved; requeueing job {job_id}" in output
    assert f"job {job_id} (restart 1)" in output  # the requeued job ran the same script again

    # the first job stopped s1 early with a checkpoint at the step it was on; the second resumed from it
    preempted = [r for r in records(run, "error", "s1") if "preempted at step" in r["message"]]
    assert len(preempted) == 1, output[-4000:]
    stopped_at = preempted[0]["step"]
    assert 5 <= stopped_at < 12
    assert (
        f"resuming stage s1 from step{stopped_at:08d}" in (run / "stages" / "s1" / "worker.log").read_text()
    )
    assert not (run / "stages" / "s1" / STOP_FILE).exists()
    stages = json.loads((run / "state.json").read_text())["stages"]
    assert {name: stage["status"] for name, stage in stages.items()} == {"s1": "done", "s2": "done"}
    assert stages["s1"]["result"]["world_size"] == 2

    # the ranks' environment reached the second node as it did the first (srun --export=ALL)
    given = [json.loads(path.read_text()) for path in sorted(state.glob("srun-task-*-node1.json"))]
    assert len(given) == 3  # s1, s1 again after the requeue, s2
    for task in given:
        assert (
            task["SLURM_NODEID"] == "1"
            and task["OMP_NUM_THREADS"] == "1"
            and task["WANDB_MODE"] == "disabled"
        )
        assert {"TFCTL_ORCHESTRATOR_PID", "TFCTL_ORCHESTRATOR_HOST"} <= task.keys()

    # bit-identical to the uninterrupted run: every train loss of both stages, and the final weights
    for stage in ("s1", "s2"):
        losses = {r["step"]: r["loss"] for r in records(run, "train", stage)}
        expected = {r["step"]: r["loss"] for r in records(reference, "train", stage)}
        assert losses == expected, stage
    final = load_file(str(run / "stages" / "s2" / "final" / "model.safetensors"))
    expected = load_file(str(reference / "stages" / "s2" / "final" / "model.safetensors"))
    assert final.keys() == expected.keys()
    assert all(torch.equal(final[name], expected[name]) for name in expected)
