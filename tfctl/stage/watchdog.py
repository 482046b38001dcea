"""Ranks do not outlive the `tfctl train` that started them.

The launcher runs in its own process group, so a SIGKILL of `tfctl train` alone (the OOM killer, `kill -9`)
would leave the ranks training with nobody to record the result, and the run lock free for a second
`tfctl train` to start a second set of ranks on the same stage. The orchestrator passes its pid in
$TFCTL_ORCHESTRATOR_PID; a daemon thread on every rank kills the rank's process group when that process is
gone. Without the variable (a worker started by hand) nothing is watched. On another node (a multi-node
launch: $TFCTL_ORCHESTRATOR_HOST is not this host) that pid means nothing, and nothing is watched either: those
ranks end when their launcher (srun, pdsh) or their peers on the orchestrator's node do.
"""

import os
import signal
import socket
import threading

ORCHESTRATOR_PID = "TFCTL_ORCHESTRATOR_PID"
ORCHESTRATOR_HOST = "TFCTL_ORCHESTRATOR_HOST"


def orchestrator_env() -> dict:
    """What the orchestrator gives its ranks so that they stop when it dies."""
    return {ORCHESTRATOR_PID: str(os.getpid()), ORCHESTRATOR_HOST: socket.gethostname()}


def _gone(process) -> bool:
    import psutil

    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def watch_orchestrator(interval: float = 0.5) -> bool:
    """Start the watchdog thread if the orchestrator runs on this host; whether it was started."""
    pid = os.environ.get(ORCHESTRATOR_PID)
    host = os.environ.get(ORCHESTRATOR_HOST)
    if not pid or (host and host != socket.gethostname()):
        return False
    import psutil

    try:
        process = psutil.Process(int(pid))
    except (psutil.Error, ValueError):
        os.killpg(os.getpgrp(), signal.SIGKILL)
        return False

    def watch() -> None:
        while not _gone(process):
            threading.Event().wait(interval)
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="tfctl-orchestrator-watchdog", daemon=True).start()
    return True
