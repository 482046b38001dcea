"""The launch command for each launcher, exit-code propagation, and stopping every rank."""

import os
import subprocess
import sys
import time

import pytest

from tfctl.errors import UserError
from tfctl.launch import OMP_SPIN_COUNT, build_command, build_env, run_stage, stop_group
from tfctl.recipe.schema import LaunchSection


def test_auto_is_a_plain_process_for_one_rank():
    command = build_command("spec.json", LaunchSection())
    assert command == [sys.executable, "-u", "-m", "tfctl.worker", "spec.json"]


def test_auto_is_deepspeed_for_several_ranks_on_cpu():
    command = build_command("spec.json", LaunchSection(nproc_per_node=2), port=29611, gpu=False)
    assert command[0].endswith("deepspeed")
    assert command[1:] == [
        "--num_accelerators",
        "2",
        "--num_nodes",
        "1",
        "--master_port",
        "29611",
        "--module",
        "tfctl.worker",
        "spec.json",
    ]


def test_deepspeed_multi_node_on_gpus():
    launch = LaunchSection(
        launcher="deepspeed",
        nproc_per_node=8,
        nnodes=4,
        hostfile="/job/hostfile",
        master_addr="node0",
        master_port=29500,
        deepspeed_launcher="slurm",
        extra_args=["--force_multi"],
    )
    command = build_command("s.json", launch, gpu=True, worker_args=["--max-steps-this-run", "3"])
    assert command[1:] == [
        "--num_gpus",
        "8",
        "--num_nodes",
        "4",
        "--master_port",
        "29500",
        "--hostfile",
        "/job/hostfile",
        "--master_addr",
        "node0",
        "--launcher",
        "slurm",
        "--force_multi",
        "--module",
        "tfctl.worker",
        "s.json",
        "--max-steps-this-run",
        "3",
    ]


def test_torchrun_command():
    command = build_command("s.json", LaunchSection(launcher="torchrun", nproc_per_node=2), port=29612)
    assert command[0].endswith("torchrun")
    assert command[1:] == [
        "--nproc_per_node",
        "2",
        "--nnodes",
        "1",
        "--master_port",
        "29612",
        "-m",
        "tfctl.worker",
        "s.json",
    ]


def test_a_free_port_is_picked_when_none_is_set():
    ports = {build_command("s", LaunchSection(nproc_per_node=2), gpu=False)[6] for _ in range(3)}
    assert all(1024 < int(p) < 65536 for p in ports)


@pytest.mark.parametrize(
    "launch,message",
    [
        (LaunchSection(launcher="local", nproc_per_node=2), "world size is 2"),
        (LaunchSection(nproc_per_node=2, nnodes=2), "hostfile"),
    ],
)
def test_bad_launch_settings_are_user_errors(launch, message):
    with pytest.raises(UserError, match=message):
        build_command("s.json", launch, gpu=False)


@pytest.mark.parametrize("values", [{"launcher": "mpi"}, {"deepspeed_launcher": "ssh"}])
def test_unknown_launchers_are_refused_by_the_schema(values):
    with pytest.raises(ValueError, match="launcher"):
        LaunchSection(**values)


def test_cpu_ranks_get_one_thread_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert build_env(LaunchSection(nproc_per_node=2), gpu=False)["OMP_NUM_THREADS"] == "1"
    assert "OMP_NUM_THREADS" not in build_env(LaunchSection(), gpu=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert build_env(LaunchSection(nproc_per_node=2), gpu=False)["OMP_NUM_THREADS"] == "3"
    assert build_env(LaunchSection(), {"X": 1}, gpu=False)["X"] == "1"


def test_several_openmp_threads_of_a_cpu_rank_spin_briefly_then_sleep(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    env = build_env(LaunchSection(), gpu=False)
    assert env["GOMP_SPINCOUNT"] == OMP_SPIN_COUNT and "OMP_WAIT_POLICY" not in env
    assert "GOMP_SPINCOUNT" not in build_env(LaunchSection(nproc_per_node=2), gpu=False)  # 1 thread each
    assert "GOMP_SPINCOUNT" not in build_env(LaunchSection(), gpu=True)
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # the user's choice, either way
    assert "GOMP_SPINCOUNT" not in build_env(LaunchSection(), gpu=False)
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setenv("GOMP_SPINCOUNT", "100")
    assert build_env(LaunchSection(), gpu=False)["GOMP_SPINCOUNT"] == "100"


def test_run_stage_propagates_the_worker_exit_code_and_logs(tmp_path):
    log = tmp_path / "worker.log"
    code = run_stage(tmp_path / "missing.json", LaunchSection(), log_path=log)
    assert code == 2
    text = log.read_text()
    assert "missing.json: not a usable stage spec" in text and "Traceback" not in text


def test_stop_group_stops_the_launcher_and_its_children():
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; "
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            "print('started', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout.readline().strip() == "started"
    started = time.monotonic()
    stop_group(process, grace=5)
    assert process.poll() is not None and time.monotonic() - started < 10
    with pytest.raises(ProcessLookupError):  # nothing of the group is left
        for _ in range(50):
            os.killpg(process.pid, 0)
            time.sleep(0.1)


def test_last_error_line_is_the_workers_message_else_the_exception(tmp_path):
    from tfctl.launch import last_error_line

    log = tmp_path / "worker.log"
    log.write_text(
        "[2026-01-01 00:00:00] [INFO] chatter\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "[rank0]: RuntimeError: shape mismatch: value tensor of shape [2] cannot be broadcast\n"
        "[INFO] [launch.py:319:sigkill_handler] Killing subprocess 4242\n"
    )
    assert (
        last_error_line(log) == "RuntimeError: shape mismatch: value tensor of shape [2] cannot be broadcast"
    )
    with open(log, "a") as f:
        f.write("tfctl worker (rank 0): spec.model.vocab_size 100 < the data's vocab size 512 (data)\n")
        f.write("tfctl worker (rank 1): interrupted\n")
    assert last_error_line(log) == "spec.model.vocab_size 100 < the data's vocab size 512 (data)"
    assert last_error_line(tmp_path / "none.log") is None


def test_without_echo_only_the_workers_notices_reach_stdout(tmp_path, capfd):
    import json

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"stage": "s0"}))  # not a usable spec: the worker says so on stderr
    code = run_stage(spec, LaunchSection(), log_path=tmp_path / "worker.log", echo=False)
    assert code == 2
    assert capfd.readouterr().out == ""
    assert "not a usable stage spec" in (tmp_path / "worker.log").read_text()
