"""Ranks do not outlive the `tfctl train` that started them.

The launcher runs in its own process group, so a SIGKILL of `tfctl train` alone (the OOM killer, `kill -9`)
would leave the ranks training with nobody to record the result, and the run lock free for a second
`tfctl train` to start a second set of ranks on the same stage. The orchestrator passes its pid in
$TFCTL_ORCHESTRATOR_PID; a daemon thread on every rank kills the rank's process group when that process is
gone. Without the variable (a worker started by hand) nothing is watched.
"""

import os
import signal
import threading

ORCHESTRATOR_PID = "TFCTL_ORCHESTRATOR_PID"


def _gone(process) -> bool:
    import psutil

    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def watch_orchestrator(interval: float = 0.5) -> None:
    pid = os.environ.get(ORCHESTRATOR_PID)
    if not pid:
        return
    import psutil

    try:
        process = psutil.Process(int(pid))
    except (psutil.Error, ValueError):
        os.killpg(os.getpgrp(), signal.SIGKILL)
        return

    def watch() -> None:
        while not _gone(process):
            threading.Event().wait(interval)
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="tfctl-orchestrator-watchdog", daemon=True).start()
