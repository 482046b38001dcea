"""`tfctl submit`: the Slurm batch script that trains a recipe on an allocation, and its submission.

The script (RUN/submit.slurm) asks for N nodes of G GPUs with `--requeue` and a warning signal to the batch
shell some minutes before the time limit; on the first node it finds the other nodes (`scontrol show
hostnames`), picks the rendezvous port from the job id, writes a hostfile of the allocation, and runs
`tfctl train` with `launch.launcher: srun` (one srun task per node, each a torchrun agent: tfctl/launch.py).
On the warning (or SIGTERM) it tells `tfctl train`, whose ranks checkpoint the step they are on and stop;
`tfctl train` exits EXIT_PREEMPTED and the script requeues the job (`scontrol requeue`). A requeued or
re-submitted job runs the same `tfctl train` on the same run directory, which resumes it.
"""

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tfctl.errors import UserError
from tfctl.stage.exit_codes import EXIT_PREEMPTED

SCRIPT_NAME = "submit.slurm"
HOSTFILE_NAME = "hostfile"
LOG_PATTERN = "slurm-%j.out"  # in the run dir; %j is the job id, one file per job (requeues append to it)
PORT_BASE, PORT_SPAN = 20000, 20000  # the rendezvous port: PORT_BASE + job id mod PORT_SPAN

# Slurm's time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
TIME_FORMATS = (
    (re.compile(r"^(\d+)$"), ("minutes",)),
    (re.compile(r"^(\d+):(\d{1,2})$"), ("minutes", "seconds")),
    (re.compile(r"^(\d+):(\d{1,2}):(\d{1,2})$"), ("hours", "minutes", "seconds")),
    (re.compile(r"^(\d+)-(\d{1,2})$"), ("days", "hours")),
    (re.compile(r"^(\d+)-(\d{1,2}):(\d{1,2})$"), ("days", "hours", "minutes")),
    (re.compile(r"^(\d+)-(\d{1,2}):(\d{1,2}):(\d{1,2})$"), ("days", "hours", "minutes", "seconds")),
)
SECONDS = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}


def time_limit_seconds(limit: str) -> int:
    """Seconds of a Slurm time limit such as 1-00:00 or 12:00:00; UserError for anything else."""
    for pattern, units in TIME_FORMATS:
        match = pattern.match(limit.strip())
        if match:
            return sum(int(value) * SECONDS[unit] for value, unit in zip(match.groups(), units, strict=True))
    raise UserError(f"--time {limit!r}: not a Slurm time limit (D-HH:MM, HH:MM:SS or minutes)")


@dataclass
class SubmitSettings:
    recipe: Path  # absolute
    run_dir: Path  # absolute
    nodes: int
    gpus_per_node: int
    time: str
    ranks_per_node: int  # the ranks torchrun starts on each node: the GPUs, or CPU processes
    signal_minutes: int = 10
    partition: str | None = None
    account: str | None = None
    sbatch_args: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)  # `tfctl train --set` of the recipe
    job_name: str = "tfctl"
    workdir: Path = field(default_factory=Path.cwd)  # where the recipe's relative paths mean what they say

    def check(self) -> None:
        if self.nodes < 1:
            raise UserError(f"--nodes {self.nodes}: must be at least 1")
        if self.gpus_per_node < 0:
            raise UserError(f"--gpus-per-node {self.gpus_per_node}: must be 0 or more")
        if self.ranks_per_node < 1:
            raise UserError(f"--ranks-per-node {self.ranks_per_node}: must be at least 1")
        if self.signal_minutes < 1:
            raise UserError(f"--signal-minutes {self.signal_minutes}: must be at least 1")
        limit = time_limit_seconds(self.time)
        if limit <= self.signal_minutes * 60:
            raise UserError(
                f"--time {self.time}: the warning comes {self.signal_minutes} minutes before the limit, so "
                "the limit must be longer than that (or lower --signal-minutes)"
            )
        if any(character.isspace() for character in str(self.run_dir)):
            raise UserError(
                f"-o {self.run_dir}: Slurm's --output cannot name a path with spaces; choose another"
            )
        for argument in self.sbatch_args:
            if not argument.startswith("--") or "\n" in argument:
                raise UserError(f"--sbatch-arg {argument!r}: give one long sbatch option, e.g. --qos=high")


def sbatch_header(settings: SubmitSettings) -> list[str]:
    options = [
        f"--job-name={settings.job_name}",
        f"--nodes={settings.nodes}",
        "--ntasks-per-node=1",  # one task per node: the torchrun agent that starts the node's ranks
    ]
    if settings.gpus_per_node:
        options.append(f"--gpus-per-node={settings.gpus_per_node}")
    options += [
        f"--time={settings.time}",
        "--requeue",
        f"--signal=B:USR1@{settings.signal_minutes * 60}",  # to the batch shell, which tells tfctl train
        "--open-mode=append",  # a requeued job appends to its log
        f"--output={settings.run_dir / LOG_PATTERN}",
        f"--error={settings.run_dir / LOG_PATTERN}",
    ]
    if settings.partition:
        options.append(f"--partition={settings.partition}")
    if settings.account:
        options.append(f"--account={settings.account}")
    options += settings.sbatch_args
    return [f"#SBATCH {option}" for option in options]


def train_command(settings: SubmitSettings) -> list[str]:
    """`tfctl train` with the launch settings of the allocation, one shell line per part (the shell variables
    are left for bash to expand)."""
    command = [sys.executable, "-m", "tfctl", "train", str(settings.recipe), "-o", str(settings.run_dir)]
    launch = {
        "launcher": "srun",
        "nnodes": "$SLURM_NNODES",
        "nproc_per_node": str(settings.ranks_per_node),
        "master_addr": "$MASTER_ADDR",
        "master_port": "$MASTER_PORT",
        "hostfile": "$HOSTFILE",
    }
    lines = [shlex.join(command)]
    lines += [f"--set {shlex.quote(override)}" for override in settings.overrides]
    return lines + [f'--set "launch.{key}={value}"' for key, value in launch.items()]


def render_script(settings: SubmitSettings) -> str:
    run = shlex.quote(str(settings.run_dir))
    train = " \\\n    ".join(train_command(settings))
    return f"""#!/bin/bash
# Written by `tfctl submit` for {settings.run_dir}.
# Submit it again (sbatch {settings.run_dir / SCRIPT_NAME}) to resume the run where it stopped.
{chr(10).join(sbatch_header(settings))}

set -u
cd {shlex.quote(str(settings.workdir))}
RUN={run}

# The allocation: the first node hosts the rendezvous; the port follows from the job id.
NODES=$(scontrol show hostnames "$SLURM_JOB_NODELIST")
MASTER_ADDR=$(echo "$NODES" | head -n 1)
MASTER_PORT=$(( {PORT_BASE} + SLURM_JOB_ID % {PORT_SPAN} ))
HOSTFILE="$RUN/{HOSTFILE_NAME}"
echo "$NODES" | sed 's/$/ slots={settings.ranks_per_node}/' > "$HOSTFILE"
echo "tfctl submit: job $SLURM_JOB_ID (restart ${{SLURM_RESTART_COUNT:-0}}) on $SLURM_NNODES node(s): $(echo $NODES)"

# Slurm's warning (--signal=B:USR1) or SIGTERM: tfctl train's ranks checkpoint the step they are on and stop.
TRAIN=
STOP=
stop() {{
    STOP=1
    echo "tfctl submit: stop requested, checkpointing"
    if [ -n "$TRAIN" ]; then kill -USR1 "$TRAIN" 2>/dev/null; fi
}}
trap stop USR1 TERM

{train} &
TRAIN=$!
if [ -n "$STOP" ]; then kill -USR1 "$TRAIN"; fi
wait $TRAIN
CODE=$?
while kill -0 $TRAIN 2>/dev/null; do  # `wait` returned for a signal: tfctl train is still saving
    wait $TRAIN
    CODE=$?
done
if [ $CODE -eq {EXIT_PREEMPTED} ]; then
    echo "tfctl submit: preempted with a checkpoint saved; requeueing job $SLURM_JOB_ID"
    scontrol requeue "$SLURM_JOB_ID" || echo "tfctl submit: requeue failed: sbatch $RUN/{SCRIPT_NAME} resumes"
fi
exit $CODE
"""


def write_script(settings: SubmitSettings) -> Path:
    """Check the settings, then write RUN/submit.slurm (the run dir created if needed)."""
    settings.check()
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    path = settings.run_dir / SCRIPT_NAME
    path.write_text(render_script(settings))
    path.chmod(0o755)
    return path


def sbatch(script: Path) -> str:
    """Submit `script`; the job id sbatch gives."""
    if shutil.which("sbatch") is None:
        raise UserError("sbatch not found on PATH: run this on a Slurm login node, or use --dry-run")
    result = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True)
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
        raise UserError(f"sbatch refused {script}: {reason}")
    return result.stdout.strip().split(";")[0]
