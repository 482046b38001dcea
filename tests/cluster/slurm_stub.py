"""Stand-ins for Slurm's sbatch, srun and scontrol on one machine, for the tests of `tfctl submit`.

`install(bin_dir, state_dir)` writes the three executables; with bin_dir first on PATH and $SLURM_STUB_STATE
set, they behave as a cluster of N "nodes" that are all this machine (127.0.0.1, 127.0.0.2, ...: every 127/8
address is loopback, so each node has its own address and all of them resolve):

  sbatch [--parsable] SCRIPT   reads the script's #SBATCH lines (--nodes, --output), prints the job id and
                               runs the job in the background: `bash SCRIPT` in a session of its own, with the
                               variables a real allocation sets (SLURM_JOB_ID, SLURM_JOB_NODELIST in
                               Slurm's compressed form, SLURM_NNODES, SLURM_RESTART_COUNT, ...); its pid in
                               STATE/job-ID.pid. When the script has asked for a requeue, it runs it again
                               with SLURM_RESTART_COUNT + 1; at the end STATE/job-ID.done holds the exit code.
  srun [options] COMMAND ...   one task per node (--nodes/--ntasks), each COMMAND with SLURM_NODEID,
                               SLURM_PROCID, SLURMD_NODENAME of its node; --export=ALL|NONE|NAMES honoured;
                               INT, TERM, USR1, USR2 forwarded to every task; --kill-on-bad-exit stops the
                               others when one fails; exits with the highest exit status. Each task's
                               TFCTL_*, WANDB_*, OMP_* variables go to STATE/srun-task-JOB-PID-nodeN.json.
  scontrol show hostnames [LIST] | scontrol requeue JOBID
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STATE = "SLURM_STUB_STATE"
FIRST_JOB_ID = "SLURM_STUB_FIRST_JOB_ID"
MAX_RESTARTS = 3


def install(bin_dir: Path, state_dir: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    for name in ("sbatch", "srun", "scontrol"):
        path = bin_dir / name
        path.write_text(
            f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO)!r})\n"
            f"from tests.cluster.slurm_stub import main\nmain({name!r}, sys.argv[1:])\n"
        )
        path.chmod(0o755)


def expand_hostlist(hostlist: str) -> list[str]:
    """Slurm's compressed host list (`node[1-3,7],gpu05`, `127.0.0.[1-2]`) as names."""
    hosts = []
    for part in re.findall(r"[^,\[]*(?:\[[^\]]*\])?[^,\[]*", hostlist):
        if not part:
            continue
        match = re.match(r"^(.*)\[([^\]]*)\](.*)$", part)
        if not match:
            hosts.append(part)
            continue
        prefix, ranges, suffix = match.groups()
        for piece in ranges.split(","):
            first, _, last = piece.partition("-")
            for number in range(int(first), int(last or first) + 1):
                hosts.append(f"{prefix}{number:0{len(first)}d}{suffix}")
    return hosts


def node_list(nodes: int) -> str:
    return "127.0.0.1" if nodes == 1 else f"127.0.0.[1-{nodes}]"


def sbatch_options(script: Path) -> dict:
    options = {}
    for line in script.read_text().splitlines():
        if line.startswith("#SBATCH "):
            name, _, value = line.removeprefix("#SBATCH ").strip().partition("=")
            options[name] = value
    return options


def sbatch(args: list[str]) -> int:
    parsable = "--parsable" in args
    script = Path([a for a in args if not a.startswith("-")][-1]).resolve()
    state = Path(os.environ[STATE])
    counter = state / "last-job-id"
    job_id = int(counter.read_text()) + 1 if counter.exists() else int(os.environ.get(FIRST_JOB_ID, 1000))
    counter.write_text(str(job_id))
    subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from tests.cluster.slurm_stub import run_job; run_job(*sys.argv[1:])",
        ]
        + [str(script), str(job_id)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    print(job_id if parsable else f"Submitted batch job {job_id}", flush=True)
    return 0


def run_job(script: str, job_id: str) -> None:
    """The job: the batch script on the first node, again after each requeue."""
    state = Path(os.environ[STATE])
    options = sbatch_options(Path(script))
    nodes = int(options.get("--nodes", 1))
    output = options.get("--output", f"slurm-{job_id}.out").replace("%j", job_id)
    restart, code = 0, None
    while True:
        env = {
            **os.environ,
            "SLURM_JOB_ID": job_id,
            "SLURM_JOBID": job_id,
            "SLURM_JOB_NAME": options.get("--job-name", "job"),
            "SLURM_JOB_NODELIST": node_list(nodes),
            "SLURM_NODELIST": node_list(nodes),
            "SLURM_NNODES": str(nodes),
            "SLURM_JOB_NUM_NODES": str(nodes),
            "SLURM_NODEID": "0",
            "SLURMD_NODENAME": expand_hostlist(node_list(nodes))[0],
            "SLURM_SUBMIT_DIR": str(Path(script).parent),
            "SLURM_RESTART_COUNT": str(restart),
        }
        with open(output, "a") as log:
            batch = subprocess.Popen(
                ["bash", script], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            (state / f"job-{job_id}.pid").write_text(f"{restart} {batch.pid}")
            code = batch.wait()
        requeue = state / f"requeue-{job_id}"
        if not requeue.exists() or restart >= MAX_RESTARTS:
            break
        requeue.unlink()
        restart += 1
    (state / f"job-{job_id}.done").write_text(str(code))


def srun(args: list[str]) -> int:
    options, index = {}, 0
    while index < len(args) and args[index].startswith("-"):
        name, equals, value = args[index].partition("=")
        if not equals and name in ("--nodes", "-N", "--ntasks", "-n", "--ntasks-per-node"):
            index += 1
            value = args[index]
        options[name] = value or "1"
        index += 1
    command = args[index:]
    hosts = expand_hostlist(os.environ["SLURM_JOB_NODELIST"])
    nodes = int(options.get("--nodes", options.get("-N", len(hosts))))
    export = options.get("--export", "ALL")
    tasks = []
    for node in range(nodes):
        if export == "ALL":
            env = dict(os.environ)
        else:
            names = [] if export == "NONE" else export.split(",")
            env = {k: v for k, v in os.environ.items() if k.startswith("SLURM_") or k in names}
        env.update(
            SLURM_NODEID=str(node),
            SLURM_PROCID=str(node),
            SLURM_LOCALID="0",
            SLURM_NTASKS=str(nodes),
            SLURM_STEP_NUM_NODES=str(nodes),
            SLURMD_NODENAME=hosts[node],
        )
        # what each task was given, for the tests: the variables tfctl means every rank to have
        given = {k: v for k, v in env.items() if k.startswith(("TFCTL_", "WANDB_", "OMP_", "SLURM_NODEID"))}
        step = f"{os.environ['SLURM_JOB_ID']}-{os.getpid()}-node{node}"
        (Path(os.environ[STATE]) / f"srun-task-{step}.json").write_text(json.dumps(given))
        tasks.append(subprocess.Popen(command, env=env))

    def forward(number, _frame):
        for task in tasks:
            if task.poll() is None:
                task.send_signal(number)

    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(number, forward)
    kill_on_bad_exit = options.get("--kill-on-bad-exit", "0") != "0"
    while any(task.poll() is None for task in tasks):
        failed = [t for t in tasks if t.returncode not in (None, 0)]
        if failed and kill_on_bad_exit:
            for task in tasks:
                if task.poll() is None:
                    task.terminate()
            time.sleep(5)
            for task in tasks:
                if task.poll() is None:
                    task.kill()
        time.sleep(0.05)
    codes = [128 - t.returncode if t.returncode < 0 else t.returncode for t in tasks]
    return max(codes)


def scontrol(args: list[str]) -> int:
    if args[:2] == ["show", "hostnames"]:
        hostlist = args[2] if len(args) > 2 else os.environ["SLURM_JOB_NODELIST"]
        print("\n".join(expand_hostlist(hostlist)))
        return 0
    if args[:1] == ["requeue"]:
        (Path(os.environ[STATE]) / f"requeue-{args[1]}").touch()
        return 0
    print(f"scontrol stub: unsupported {args}", file=sys.stderr)
    return 1


def main(name: str, args: list[str]) -> None:
    sys.exit({"sbatch": sbatch, "srun": srun, "scontrol": scontrol}[name](args))
