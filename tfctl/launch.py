"""Turn launch settings into the command that runs the worker on every rank, and supervise it.

    local      python -m tfctl.worker SPEC                                  (world size 1)
    deepspeed  deepspeed --num_gpus|--num_accelerators N [--num_nodes M --hostfile H --launcher L]
               --master_port P --module tfctl.worker SPEC
    torchrun   torchrun --nproc_per_node N --nnodes M [--master_addr A] --master_port P -m tfctl.worker SPEC
    auto       local for one rank, else deepspeed

The launcher runs in its own process group: its output is streamed (and copied to `log_path`), its exit
status is returned, and Ctrl-C stops every rank by signalling the whole group.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from tfctl.errors import UserError
from tfctl.worker.extensions import EXTENSIONS_DIR, check_build_locks, default_extensions_dir

LAUNCHERS = ("auto", "local", "deepspeed", "torchrun")
DEEPSPEED_LAUNCHERS = ("pdsh", "openmpi", "slurm", "mvapich", "impi", "mpich")
EXIT_INTERRUPTED = 130
EXIT_TIMEOUT = 124


@dataclass
class LaunchSettings:
    launcher: str = "auto"  # auto | local | deepspeed | torchrun
    nproc_per_node: int = 1  # ranks per node (GPUs, or CPU processes)
    nnodes: int = 1
    hostfile: str | None = None  # DeepSpeed hostfile (multi-node)
    master_addr: str | None = None
    master_port: int | None = None  # None: a free port
    deepspeed_launcher: str | None = None  # deepspeed --launcher: pdsh | openmpi | slurm | mvapich | impi
    extra_args: list[str] = field(default_factory=list)  # passed to the launcher, before the worker module
    env: dict = field(default_factory=dict)  # extra environment for every rank

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes

    def resolved_launcher(self) -> str:
        if self.launcher not in LAUNCHERS:
            raise UserError(f"launch.launcher must be one of {LAUNCHERS}, got {self.launcher!r}")
        if self.launcher == "auto":
            return "local" if self.world_size == 1 else "deepspeed"
        if self.launcher == "local" and self.world_size != 1:
            raise UserError(
                f"launch.launcher 'local' runs one process, but the world size is {self.world_size}"
            )
        return self.launcher


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _tool(name: str) -> str:
    """The launcher script next to this Python (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def build_command(
    spec_path: str | Path,
    launch: LaunchSettings,
    port: int | None = None,
    gpu: bool | None = None,
    worker_args: list[str] | None = None,
) -> list[str]:
    """The argv that runs `tfctl.worker` on every rank. `port` defaults to launch.master_port or a free one."""
    launcher = launch.resolved_launcher()
    worker = [str(spec_path), *(worker_args or [])]
    if launcher == "local":
        return [sys.executable, "-u", "-m", "tfctl.worker", *worker]
    port = port or launch.master_port or free_port()
    if launcher == "torchrun":
        command = [
            _tool("torchrun"),
            "--nproc_per_node",
            str(launch.nproc_per_node),
            "--nnodes",
            str(launch.nnodes),
            "--master_port",
            str(port),
        ]
        if launch.master_addr:
            command += ["--master_addr", launch.master_addr]
        return command + list(launch.extra_args) + ["-m", "tfctl.worker", *worker]
    gpu = _has_gpu() if gpu is None else gpu
    command = [
        _tool("deepspeed"),
        "--num_gpus" if gpu else "--num_accelerators",
        str(launch.nproc_per_node),
        "--num_nodes",
        str(launch.nnodes),
        "--master_port",
        str(port),
    ]
    if launch.nnodes > 1 and not launch.hostfile:
        raise UserError("launch.hostfile is required for a multi-node deepspeed launch")
    if launch.hostfile:
        command += ["--hostfile", str(launch.hostfile)]
    if launch.master_addr:
        command += ["--master_addr", launch.master_addr]
    if launch.deepspeed_launcher:
        if launch.deepspeed_launcher not in DEEPSPEED_LAUNCHERS:
            raise UserError(
                f"launch.deepspeed_launcher must be one of {DEEPSPEED_LAUNCHERS}, "
                f"got {launch.deepspeed_launcher!r}"
            )
        command += ["--launcher", launch.deepspeed_launcher]
    return command + list(launch.extra_args) + ["--module", "tfctl.worker", *worker]


def build_env(launch: LaunchSettings, gpu: bool | None = None) -> dict:
    env = {**os.environ, **{k: str(v) for k, v in launch.env.items()}}
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault(EXTENSIONS_DIR, str(default_extensions_dir()))  # this environment's DeepSpeed ops
    if launch.world_size > 1 and "OMP_NUM_THREADS" not in env and not (_has_gpu() if gpu is None else gpu):
        # CPU ranks share the cores: one thread each avoids oversubscription
        env["OMP_NUM_THREADS"] = "1"
    return env


def run_stage(
    spec_path: str | Path,
    launch: LaunchSettings,
    log_path: str | Path | None = None,
    worker_args: list[str] | None = None,
    timeout: float | None = None,
) -> int:
    """Run the worker on every rank; stream its output (and copy it to `log_path`); return its exit code.

    `timeout` (seconds): stop every rank after it and return 124."""
    gpu = _has_gpu() if launch.resolved_launcher() != "local" else None
    command = build_command(spec_path, launch, gpu=gpu, worker_args=worker_args)
    env = build_env(launch, gpu=gpu if gpu is not None else False)
    if launch.world_size > 1:  # the ranks would build or load DeepSpeed's shared-memory op: no stale lock
        check_build_locks(Path(env[EXTENSIONS_DIR]))
    log = None
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "a", buffering=1)
        log.write(f"$ {' '.join(command)}\n")
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        text=True,
        errors="replace",
        bufsize=1,
    )
    timer = threading.Timer(timeout, stop_group, [process]) if timeout else None
    if timer:
        timer.start()
    try:
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if log:
                log.write(line)
        code = process.wait()
        return EXIT_TIMEOUT if timer and not timer.is_alive() and code != 0 else code
    except KeyboardInterrupt:
        stop_group(process)
        return EXIT_INTERRUPTED
    finally:
        if timer:
            timer.cancel()
        if process.poll() is None:
            stop_group(process)
        if log:
            log.close()


def stop_group(process: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGINT the launcher's whole process group (every rank), then SIGTERM, then SIGKILL."""
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
