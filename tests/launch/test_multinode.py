"""The multi-node launch paths, on one machine: two torchrun agents as two nodes, and the exact command a
2-node DeepSpeed hostfile launch runs (built by DeepSpeed's own runner, with ssh and pdsh stubbed out)."""

import base64
import json
import os
import sys
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tfctl.launch import build_command, build_env, free_port, run_stage
from tfctl.recipe.schema import LaunchSection

QUIET = {"WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
SPEC = "/runs/r/stages/s1/spec.json"


class LaunchedCommand:
    """Stands in for subprocess.Popen in DeepSpeed's runner: records the command, starts nothing."""

    commands: list = []

    def __init__(self, command, env=None):
        self.commands.append(command)
        self.returncode = 0

    def wait(self):
        return 0


def test_deepspeed_two_node_hostfile_launch(tmp_path, monkeypatch):
    from deepspeed.launcher import multinode_runner, runner

    hostfile = tmp_path / "hostfile"
    hostfile.write_text("node-a slots=2\nnode-b slots=2\n")
    launch = LaunchSection(
        launcher="deepspeed", nproc_per_node=2, nnodes=2, hostfile=str(hostfile), master_addr="node-a"
    )
    command = build_command(SPEC, launch, port=29500, gpu=False)
    assert command == [
        str(Path(sys.executable).parent / "deepspeed"),
        "--num_accelerators",
        "2",
        "--num_nodes",
        "2",
        "--master_port",
        "29500",
        "--hostfile",
        str(hostfile),
        "--master_addr",
        "node-a",
        "--module",
        "tfctl.worker",
        SPEC,
    ]

    # DeepSpeed's runner, given that argv and the environment tfctl gives it: what it would run over pdsh
    for name in [n for n in os.environ if n.startswith(tuple(runner.EXPORT_ENVS))]:
        monkeypatch.delenv(name)
    for name, value in build_env(launch, gpu=False).items():
        if name.startswith(tuple(runner.EXPORT_ENVS)):
            monkeypatch.setenv(name, value)
    ssh_checks = []
    monkeypatch.setattr(runner.subprocess, "check_call", lambda cmd, **_: ssh_checks.append(cmd))
    monkeypatch.setattr(runner.subprocess, "Popen", LaunchedCommand)
    monkeypatch.setattr(runner.signal, "signal", lambda *_: None)
    monkeypatch.setattr(runner, "DEEPSPEED_ENVIRONMENT_PATHS", [str(tmp_path)])
    monkeypatch.setattr(multinode_runner.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.chdir(tmp_path)
    LaunchedCommand.commands = []
    runner.main(command[1:])

    world_info = base64.urlsafe_b64encode(json.dumps({"node-a": [0, 1], "node-b": [0, 1]}).encode()).decode()
    assert ssh_checks == [["ssh", "-o", "PasswordAuthentication=no", "node-a", "hostname"]]
    assert LaunchedCommand.commands == [
        [
            "pdsh",
            "-S",
            "-f",
            "1024",
            "-w",
            "node-a,node-b",
            f"export PYTHONUNBUFFERED=1; export PYTHONPATH={tmp_path}; ",
            f"cd {tmp_path};",
            sys.executable,
            "-u",
            "-m",
            "deepspeed.launcher.launch",
            f"--world_info={world_info}",
            "--node_rank=%n",
            "--master_addr=node-a",
            "--master_port=29500",
            "--module",
            "--enable_each_rank_log=None",  # DeepSpeed passes its default on as the string "None"
            "tfctl.worker",
            SPEC,
        ]
    ]


def train_losses(out_dir: Path) -> list[float]:
    lines = (out_dir / "metrics.jsonl").read_text().splitlines()
    return [r["loss"] for r in map(json.loads, lines) if r["kind"] == "train"]


@pytest.mark.slow
def test_two_torchrun_agents_as_two_nodes_equal_one_node_of_two_ranks(tmp_path, make_spec):
    """`launch.launcher: torchrun`, `nnodes: 2`, `master_addr`: one agent per node (node_rank through
    extra_args), one rank each, rendezvous on 127.0.0.1. Same world size, same reduction: the same numbers."""
    one_node = make_spec(tmp_path / "one-node", micro_batch=4)
    settings = LaunchSection(launcher="torchrun", nproc_per_node=2)
    assert run_stage(one_node, settings, log_path=one_node.parent / "worker.log", timeout=600, env=QUIET) == 0

    two_nodes = make_spec(tmp_path / "two-nodes", micro_batch=4)
    port, codes = free_port(), {}

    def agent(node_rank: int) -> None:
        node = LaunchSection(
            launcher="torchrun",
            nproc_per_node=1,
            nnodes=2,
            master_addr="127.0.0.1",
            master_port=port,
            extra_args=["--node_rank", str(node_rank)],
        )
        log = two_nodes.parent / f"node{node_rank}.log"
        codes[node_rank] = run_stage(two_nodes, node, log_path=log, timeout=600, env=QUIET)

    agents = [threading.Thread(target=agent, args=(rank,)) for rank in (0, 1)]
    for thread in agents:
        thread.start()
    for thread in agents:
        thread.join()
    assert codes == {0: 0, 1: 0}, (two_nodes.parent / "node0.log").read_text()[-3000:]

    assert train_losses(two_nodes.parent) == train_losses(one_node.parent)
    exported = load_file(str(two_nodes.parent / "final" / "model.safetensors"))
    reference = load_file(str(one_node.parent / "final" / "model.safetensors"))
    assert exported.keys() == reference.keys()
    assert all(torch.equal(exported[name], reference[name]) for name in reference)
