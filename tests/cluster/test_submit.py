"""`tfctl submit`: the script --dry-run writes, field by field; its one-line refusals; the srun launch it
makes `tfctl train` use; the pieces each rank and node rely on (time limits, the watchdog's host)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster.slurm_stub import expand_hostlist, install
from tests.conftest import RECIPES
from tfctl.errors import UserError
from tfctl.launch import build_command
from tfctl.recipe.schema import LaunchSection
from tfctl.slurm import time_limit_seconds
from tfctl.stage import watchdog
from tfctl.stage.exit_codes import EXIT_PREEMPTED

TINY = RECIPES / "tiny.yaml"


def dry_run(tfctl, tmp_path, *args):
    run = tmp_path / "run"
    result = tfctl(
        "submit", TINY, "-o", run, "--nodes", "2", "--gpus-per-node", "8", "--time", "1-02:30",
        "--partition", "gpu", "--account", "proj", "--sbatch-arg=--qos=high", "--dry-run", *args,
    )  # fmt: skip
    return run, result


def sbatch_lines(text: str) -> list[str]:
    return [line.removeprefix("#SBATCH ") for line in text.splitlines() if line.startswith("#SBATCH ")]


def test_dry_run_writes_and_prints_the_script_field_by_field(tfctl, tmp_path):
    run, result = dry_run(tfctl, tmp_path)
    assert result.returncode == 0, result.stderr
    script = (run / "submit.slurm").read_text()
    assert result.stdout.startswith(script)
    assert "not submitted (--dry-run)" in result.stdout
    assert os.access(run / "submit.slurm", os.X_OK)
    assert script.startswith("#!/bin/bash\n")
    log = f"{run.resolve()}/slurm-%j.out"
    assert sbatch_lines(script) == [
        "--job-name=tfctl-tiny",
        "--nodes=2",
        "--ntasks-per-node=1",
        "--gpus-per-node=8",
        "--time=1-02:30",
        "--requeue",
        "--signal=B:USR1@600",
        "--open-mode=append",
        f"--output={log}",
        f"--error={log}",
        "--partition=gpu",
        "--account=proj",
        "--qos=high",
    ]
    assert 'MASTER_ADDR=$(echo "$NODES" | head -n 1)' in script
    assert 'NODES=$(scontrol show hostnames "$SLURM_JOB_NODELIST")' in script
    assert "MASTER_PORT=$(( 20000 + SLURM_JOB_ID % 20000 ))" in script
    assert "sed 's/$/ slots=8/' > \"$HOSTFILE\"" in script
    train = script[script.index(sys.executable) : script.index(" &\n")].replace("\\\n", " ").split()
    assert train[:7] == [
        sys.executable,
        "-m",
        "tfctl",
        "train",
        str(TINY.resolve()),
        "-o",
        str(run.resolve()),
    ]
    assert [train[i + 1] for i, word in enumerate(train) if word == "--set"] == [
        '"launch.launcher=srun"',
        '"launch.nnodes=$SLURM_NNODES"',
        '"launch.nproc_per_node=8"',
        '"launch.master_addr=$MASTER_ADDR"',
        '"launch.master_port=$MASTER_PORT"',
        '"launch.hostfile=$HOSTFILE"',
    ]
    assert "trap stop USR1 TERM" in script
    assert f"if [ $CODE -eq {EXIT_PREEMPTED} ]; then" in script
    assert 'scontrol requeue "$SLURM_JOB_ID"' in script
    subprocess.run(["bash", "-n", str(run / "submit.slurm")], check=True)  # it parses


def test_json_and_overrides_and_cpu_nodes(tfctl, tmp_path):
    run = tmp_path / "cpu"
    result = tfctl(
        "submit", TINY, "-o", run, "-N", "3", "-g", "0", "--ranks-per-node", "4", "-t", "30",
        "--signal-minutes", "2", "--set", "train.lr=1e-3", "--dry-run", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["job_id"] is None and answer["script"] == str((run / "submit.slurm").resolve())
    lines = sbatch_lines(answer["text"])
    assert "--nodes=3" in lines and "--signal=B:USR1@120" in lines and "--time=30" in lines
    assert not any(line.startswith("--gpus-per-node") for line in lines)
    assert '"launch.nproc_per_node=4"' in answer["text"] and "--set train.lr=1e-3" in answer["text"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["-N", "2", "-t", "tomorrow"], "--time 'tomorrow': not a Slurm time limit"),
        (["-N", "2", "-t", "5"], "the warning comes 10 minutes before the limit"),
        (["-N", "0", "-t", "1:00:00"], "--nodes 0: must be at least 1"),
        (["-N", "2", "-t", "1:00:00", "--sbatch-arg", "qos=high"], "--sbatch-arg 'qos=high': give one long"),
        (["-N", "2", "-t", "1:00:00", "--set", "train.lr=-1"], "train.lr"),
        (["-N", "2", "-t", "1:00:00", "-o", "my runs/x"], "cannot name a path with spaces"),
    ],
)
def test_mistakes_are_one_line_exit_2_and_write_nothing(tfctl, tmp_path, args, message):
    args = [str(tmp_path / a) if a == "my runs/x" else a for a in args]
    result = tfctl("submit", TINY, "-o", tmp_path / "run", "-g", "8", *args, "--dry-run")
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "my runs").exists()


def test_without_sbatch_it_says_so(tfctl, tmp_path):
    result = tfctl(
        "submit", TINY, "-o", tmp_path / "run", "-N", "1", "-g", "1", "-t", "1:00:00",
        env={"PATH": str(Path(sys.executable).parent)},
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr.startswith("error: sbatch not found on PATH"), (
        result.stderr
    )


def test_submit_prints_the_job_id_sbatch_gives(tfctl, tmp_path):
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    install(bin_dir, state)
    (bin_dir / "sbatch").write_text(
        '#!/bin/sh\necho "$@" > ' + str(state / "argv") + "\necho '4321;cluster'\n"
    )
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = tfctl("submit", TINY, "-o", tmp_path / "run", "-N", "1", "-g", "1", "-t", "1:00:00", env=env)
    assert result.returncode == 0, result.stderr
    script = (tmp_path / "run" / "submit.slurm").resolve()
    assert (state / "argv").read_text().split() == ["--parsable", str(script)]
    assert result.stdout.startswith(f"submitted job 4321: {script}")


def test_slurm_time_limits():
    assert time_limit_seconds("90") == 90 * 60
    assert time_limit_seconds("1:30") == 90
    assert time_limit_seconds("12:00:00") == 12 * 3600
    assert time_limit_seconds("2-00") == 2 * 86400
    assert time_limit_seconds("1-02:30") == 86400 + 2 * 3600 + 30 * 60
    assert time_limit_seconds("1-00:00:05") == 86405
    with pytest.raises(UserError):
        time_limit_seconds("1h")


def test_srun_launch_is_one_torchrun_agent_per_node_with_the_whole_environment():
    launch = LaunchSection(
        launcher="srun", nnodes=2, nproc_per_node=8, master_addr="gpu01", master_port=23456
    )
    command = build_command("/runs/r/stages/s1/spec.json", launch)
    torchrun = str(Path(sys.executable).parent / "torchrun")
    assert command == [
        "srun", "--nodes", "2", "--ntasks", "2", "--ntasks-per-node", "1", "--kill-on-bad-exit=1",
        "--export=ALL", torchrun, "--nnodes", "2", "--nproc_per_node", "8", "--rdzv_backend", "c10d",
        "--rdzv_endpoint", "gpu01:23456", "--rdzv_id", "tfctl-s1", "-m", "tfctl.worker",
        "/runs/r/stages/s1/spec.json",
    ]  # fmt: skip
    with pytest.raises(UserError, match="launch.master_addr is required"):
        build_command("spec.json", LaunchSection(launcher="srun", nnodes=2))


def test_stub_scontrol_expands_slurm_host_lists():
    assert expand_hostlist("127.0.0.[1-2]") == ["127.0.0.1", "127.0.0.2"]
    assert expand_hostlist("gpu[08-10,12],login1") == ["gpu08", "gpu09", "gpu10", "gpu12", "login1"]


def test_the_watchdog_watches_only_an_orchestrator_on_this_host(monkeypatch):
    env = watchdog.orchestrator_env()
    monkeypatch.setenv(watchdog.ORCHESTRATOR_PID, env[watchdog.ORCHESTRATOR_PID])
    monkeypatch.setenv(watchdog.ORCHESTRATOR_HOST, "another-node")
    assert watchdog.watch_orchestrator() is False  # that pid on another node means nothing here


def test_dry_run_never_loads_torch(tmp_path):
    """A login node writes the script in a moment: no torch, DeepSpeed or wandb import."""
    probe = (
        "import sys\nfrom tfctl.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n"
        "    assert e.code == 0, e.code\nprint(sorted(m for m in ('torch', 'deepspeed', 'wandb') if m in sys.modules))"
    )
    args = ["submit", str(TINY), "-o", str(tmp_path / "run"), "-N", "2", "-g", "8", "-t", "60", "--dry-run"]
    result = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
