"""The ranks' environment reaches every node under DeepSpeed's multi-node launchers: run_stage writes it to
the stage's env file ($DS_ENV_FILE), and DeepSpeed's own runner (a real `deepspeed` process) turns it into
what pdsh (`export K=V;`), mpirun (`-x K=V`) or srun (`--export=ALL,K=V`) carry to the other nodes. ssh,
pdsh, ompi_info, mpirun, sinfo and srun are stubs that record what they are given and start nothing."""

import json
import os
import sys

import pytest

from tfctl.launch import REMOTE_ENV_PREFIXES, build_env, remote_env_file, run_stage
from tfctl.recipe.schema import LaunchSection

pytestmark = pytest.mark.slow  # a real deepspeed runner process per launcher

RECORDER = """#!{python}
import json, sys
with open({calls!r}, "a") as f:
    f.write(json.dumps([{name!r}, *sys.argv[1:]]) + "\\n")
"""
OURS = {
    "TFCTL_ORCHESTRATOR_PID": "4242",
    "TFCTL_CACHE": "/shared/cache/tfctl",
    "WANDB_MODE": "offline",
    "WANDB_DIR": "/shared/runs/r/wandb",
    "HF_HOME": "/shared/hf",
}


def stubs(tmp_path):
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.jsonl"
    bin_dir.mkdir()
    for name in ("ssh", "pdsh", "ompi_info", "mpirun", "sinfo", "srun"):
        (bin_dir / name).write_text(RECORDER.format(python=sys.executable, calls=str(calls), name=name))
        (bin_dir / name).chmod(0o755)
    return bin_dir, calls


@pytest.mark.parametrize("runner", ["pdsh", "openmpi", "slurm"])
def test_ranks_environment_reaches_the_other_nodes(tmp_path, monkeypatch, runner):
    bin_dir, calls = stubs(tmp_path)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    for name, value in OURS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("node-a slots=1\nnode-b slots=1\n")
    stage = tmp_path / "stages" / "s1"
    stage.mkdir(parents=True)
    launch = LaunchSection(
        launcher="deepspeed", nnodes=2, nproc_per_node=1, hostfile=str(hostfile), master_addr="node-a",
        master_port=29511, deepspeed_launcher=runner,
    )  # fmt: skip
    code = run_stage(stage / "spec.json", launch, log_path=stage / "worker.log", echo=False, timeout=300)
    assert code == 0, (stage / "worker.log").read_text()[-3000:]

    written = dict(line.split("=", 1) for line in (stage / "deepspeed_env").read_text().splitlines())
    assert {name: written[name] for name in OURS} == OURS
    assert written["OMP_NUM_THREADS"] == "1"  # 2 CPU ranks: one thread each, on every node
    assert "TORCH_EXTENSIONS_DIR" in written and all(n.startswith(REMOTE_ENV_PREFIXES) for n in written)

    launched = [json.loads(line) for line in calls.read_text().splitlines() if not line.startswith('["ssh"')]
    (command,) = [c for c in launched if c[0] in ("pdsh", "mpirun", "srun")]
    if runner == "slurm":
        exports = next(part for part in command if part.startswith("--export=ALL,"))
        carried = dict(item.split("=", 1) for item in exports.removeprefix("--export=ALL,").split(","))
    elif runner == "pdsh":
        exports = next(part for part in command if part.startswith("export "))
        carried = dict(
            item.removeprefix("export ").split("=", 1) for item in exports.split("; ") if item.strip()
        )
    else:
        carried = dict(command[i + 1].split("=", 1) for i, part in enumerate(command) if part == "-x")
    assert {name: carried[name] for name in written} == written


def test_remote_env_file_keeps_only_tfctl_s_variables(tmp_path):
    env = build_env(LaunchSection(nproc_per_node=2), {"TFCTL_ORCHESTRATOR_PID": "7"}, gpu=False)
    named = remote_env_file({**env, "SECRET_TOKEN": "x", "SSH_AUTH_SOCK": "/tmp/a"}, tmp_path / "env")
    assert named["DS_ENV_FILE"] == str(tmp_path / "env")
    names = [line.split("=", 1)[0] for line in (tmp_path / "env").read_text().splitlines()]
    assert "TFCTL_ORCHESTRATOR_PID" in names and "OMP_NUM_THREADS" in names
    threaded = build_env(LaunchSection(nnodes=2), {"OMP_NUM_THREADS": "4"}, gpu=False)  # 4 threads a rank
    remote_env_file(threaded, tmp_path / "env2")
    lines = (tmp_path / "env2").read_text().splitlines()
    assert f"GOMP_SPINCOUNT={threaded['GOMP_SPINCOUNT']}" in lines
    assert "SECRET_TOKEN" not in names and "SSH_AUTH_SOCK" not in names and "PATH" not in names
