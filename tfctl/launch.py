"""Turn launch settings into the command that runs the worker on every rank, and supervise it.

    local      python -m tfctl.worker SPEC                                  (world size 1)
    deepspeed  deepspeed --num_gpus|--num_accelerators N [--num_nodes M --hostfile H --launcher L]
               (openmpi, mpich, impi, mvapich: no --num_*, the hostfile's slots decide)
               --master_port P --module tfctl.worker SPEC
    torchrun   torchrun --nproc_per_node N --nnodes M [--master_addr A] --master_port P -m tfctl.worker SPEC
    srun       srun --nodes M --ntasks-per-node 1 ... torchrun --nnodes M --nproc_per_node N
               --rdzv_backend c10d --rdzv_endpoint A:P -m tfctl.worker SPEC    (inside a Slurm allocation)
    auto       local for one rank, else deepspeed

Every launcher that starts ranks on other nodes passes them the ranks' environment (`build_env`): srun with
--export=ALL, DeepSpeed's pdsh/openmpi/slurm runners through the env file named in $DS_ENV_FILE
(`remote_env_file`), which they turn into `export K=V;`, `-x K=V` or `--export=ALL,K=V`.

The launcher runs in its own process group: its output (the workers', DeepSpeed's, the launcher's own) goes
to `log_path` and, with `echo`, to stdout too; its exit status is returned, and Ctrl-C stops every rank by
signalling the whole group.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from tfctl.errors import UserError
from tfctl.files import open_no_follow
from tfctl.recipe.schema import LaunchSection
from tfctl.stage.exit_codes import NOTICE_PREFIX
from tfctl.stage.extensions import EXTENSIONS_DIR, check_build_locks, default_extensions_dir

EXIT_INTERRUPTED = 130
EXIT_TIMEOUT = 124
# DeepSpeed's MPI runners refuse --num_gpus/--num_nodes ("does not support limiting"): the hostfile decides
MPI_LAUNCHERS = ("openmpi", "mpich", "impi", "mvapich")


def resolved_launcher(launch: LaunchSection) -> str:
    """The launcher to use: `auto` is a plain process for one rank, else deepspeed."""
    if launch.launcher == "auto":
        return "local" if launch.world_size == 1 else "deepspeed"
    if launch.launcher == "local" and launch.world_size != 1:
        raise UserError(
            f"launch.launcher 'local' runs one process, but the world size is {launch.world_size}"
        )
    return launch.launcher


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
    launch: LaunchSection,
    port: int | None = None,
    gpu: bool | None = None,
    worker_args: list[str] | None = None,
) -> list[str]:
    """The argv that runs `tfctl.worker` on every rank. `port` defaults to launch.master_port or a free one."""
    launcher = resolved_launcher(launch)
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
    if launcher == "srun":
        return srun_command(worker, launch, port)
    gpu = _has_gpu() if gpu is None else gpu
    command = [_tool("deepspeed")]
    if launch.deepspeed_launcher not in MPI_LAUNCHERS:  # MPI runners take the counts from the hostfile
        command += ["--num_gpus" if gpu else "--num_accelerators", str(launch.nproc_per_node)]
        command += ["--num_nodes", str(launch.nnodes)]
    command += ["--master_port", str(port)]
    if launch.nnodes > 1 and not launch.hostfile:
        raise UserError("launch.hostfile is required for a multi-node deepspeed launch")
    if launch.hostfile:
        command += ["--hostfile", str(launch.hostfile)]
    if launch.master_addr:
        command += ["--master_addr", launch.master_addr]
    if launch.deepspeed_launcher:
        command += ["--launcher", launch.deepspeed_launcher]
    return command + list(launch.extra_args) + ["--module", "tfctl.worker", *worker]


def srun_command(worker: list[str], launch: LaunchSection, port: int) -> list[str]:
    """One srun task per node, each a torchrun agent starting that node's ranks; the agents meet at
    master_addr:port (torchrun's c10d rendezvous, hosted by the agent on master_addr), so no task needs
    its own node rank. srun passes the whole environment (--export=ALL) and signals on to every task."""
    if not launch.master_addr:
        raise UserError("launch.master_addr is required for launch.launcher 'srun' (tfctl submit sets it)")
    srun = ["srun", "--nodes", str(launch.nnodes), "--ntasks", str(launch.nnodes), "--ntasks-per-node", "1"]
    srun += ["--kill-on-bad-exit=1", "--export=ALL", *launch.extra_args]
    return srun + [
        _tool("torchrun"),
        "--nnodes",
        str(launch.nnodes),
        "--nproc_per_node",
        str(launch.nproc_per_node),
        "--rdzv_backend",
        "c10d",
        "--rdzv_endpoint",
        f"{launch.master_addr}:{port}",
        "--rdzv_id",
        f"tfctl-{Path(worker[0]).parent.name}",  # the stage: one rendezvous per stage launch
        "-m",
        "tfctl.worker",
        *worker,
    ]


# What a rank's environment holds of tfctl's choosing, and so must reach ranks on other nodes: threads, the
# W&B mode and directory, the cache and extension directories, tfctl's own variables.
REMOTE_ENV_PREFIXES = (
    "TFCTL_",
    "WANDB_",
    "OMP_",
    "GOMP_",
    "MKL_",
    "HF_",
    "TORCH_",
    "TRITON_",
    "XDG_CACHE_HOME",
)


def remote_env_file(env: dict, path: str | Path) -> dict:
    """Write the ranks' own variables as DeepSpeed's env file (KEY=VALUE lines) at `path` and return `env`
    naming it in $DS_ENV_FILE: DeepSpeed's multi-node runners export what it holds on every node."""
    lines = [
        f"{name}={value}"
        for name, value in sorted(env.items())
        if name.startswith(REMOTE_ENV_PREFIXES) and "\n" not in value
    ]
    Path(path).write_text("".join(line + "\n" for line in lines))
    return {**env, "DS_ENV_FILE": str(path)}


OMP_SPIN_COUNT = "3000"  # libgomp's spins before a waiting thread sleeps (GOMP_SPINCOUNT; its default 300000)


def build_env(launch: LaunchSection, extra: dict | None = None, gpu: bool | None = None) -> dict:
    """The ranks' environment: ours, plus `extra`, plus one OpenMP thread per CPU rank unless set, and
    OpenMP threads that spin only briefly before they sleep when a CPU rank runs several (unless the
    environment sets OMP_WAIT_POLICY or GOMP_SPINCOUNT)."""
    env = {**os.environ, **{k: str(v) for k, v in (extra or {}).items()}}
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault(EXTENSIONS_DIR, str(default_extensions_dir()))  # this environment's DeepSpeed ops
    cpu = not (_has_gpu() if gpu is None else gpu)
    if launch.world_size > 1 and "OMP_NUM_THREADS" not in env and cpu:
        # CPU ranks share the cores: one thread each avoids oversubscription
        env["OMP_NUM_THREADS"] = "1"
    if cpu and env.get("OMP_NUM_THREADS") != "1" and not {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} & env.keys():
        # torch's OpenMP (libgomp) spins ~300k times at every barrier by default: on a busy machine a spinning
        # thread burns the time slice its partner needs (the demo's 2-thread step took 3.5 s under load 8,
        # 0.4-0.5 s sleeping at once), while sleeping at once (PASSIVE) makes an idle step 1.17-1.38x slower
        # (a futex wake per barrier). A short spin keeps most of both; see tfctl/bench/notes.md.
        env["GOMP_SPINCOUNT"] = OMP_SPIN_COUNT
    return env


def run_stage(
    spec_path: str | Path,
    launch: LaunchSection,
    log_path: str | Path | None = None,
    worker_args: list[str] | None = None,
    timeout: float | None = None,
    env: dict | None = None,
    echo: bool = True,
    prefix: str = "",
) -> int:
    """Run the worker on every rank; copy its output to `log_path` (and to stdout with `echo`, each line
    after `prefix`: the run's tag when several share the console); return its exit code.

    `env`: extra environment for every rank. `timeout` (seconds): stop every rank after it and return 124."""
    gpu = _has_gpu() if resolved_launcher(launch) != "local" else None
    command = build_command(spec_path, launch, gpu=gpu, worker_args=worker_args)
    env = build_env(launch, env, gpu=gpu if gpu is not None else False)
    if launch.world_size > 1:  # the ranks would build or load DeepSpeed's shared-memory op: no stale lock
        check_build_locks(Path(env[EXTENSIONS_DIR]))
    if resolved_launcher(launch) == "deepspeed" and launch.nnodes > 1:  # pdsh, openmpi, slurm: other nodes
        env = remote_env_file(env, Path(spec_path).parent / "deepspeed_env")
    log = None
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        log = open(open_no_follow(log_path, flags), "a", buffering=1)  # never appended through a link
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
            if echo or line.startswith(NOTICE_PREFIX):  # the workers' notices reach the user anyway
                sys.stdout.write(prefix + (line if echo else line.removeprefix(NOTICE_PREFIX)))
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


WORKER_ERROR = re.compile(r"tfctl worker \(rank \d+\): (?!interrupted)")
EXCEPTION_LINE = re.compile(r"^(\w+\.)*\w*(Error|Exception|Interrupt)\b(: .*)?$")


def last_error_line(log_path: str | Path, limit: int = 240) -> str | None:
    """The line of a worker.log that says why the ranks stopped: the worker's own one-line error, else the
    last exception line of a traceback (prefixes such as DeepSpeed's `[rank0]:` stripped); None if neither."""
    try:
        lines = Path(log_path).read_text(errors="replace").splitlines()
    except OSError:
        return None
    exception = None
    for line in reversed(lines):
        text = re.sub(r"^\[(rank)?\d+\]:\s*", "", line.strip())
        if WORKER_ERROR.match(text):
            return WORKER_ERROR.sub("", text, count=1)[:limit]
        if exception is None and EXCEPTION_LINE.match(text):
            exception = text[:limit]
    return exception


def exit_reason(code: int, log_path: str | Path) -> str:
    """Why the ranks stopped, in a few words: the signal that killed them, else the log's last error line."""
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return last_error_line(log_path) or f"the ranks exited with code {code}"


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
