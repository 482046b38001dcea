"""Fault injection for the reliability tests, off unless `TFCTL_FAULT` is set. Read by the checkpointer and
the worker's exit.

TFCTL_FAULT=kill_during_checkpoint:STEP    SIGKILL the worker's process group (every rank, the launcher)
                                           after the step-STEP checkpoint's files are written, before its
                                           manifest, rename and `latest`
TFCTL_FAULT=enospc_during_checkpoint:STEP  the step-STEP save fails with OSError(ENOSPC) at that point
TFCTL_FAULT=abort_at_exit:RANK             rank RANK dies of SIGABRT as it exits, after all its work (the
                                           "terminate called without an active exception" of issue 15)
"""

import errno
import os
import signal


def inject(point: str, step: int) -> None:
    """Act out the fault named in $TFCTL_FAULT if it is `point` at `step` (a rank, for abort_at_exit)."""
    name, _, at = os.environ.get("TFCTL_FAULT", "").partition(":")
    if name != point or at != str(step):
        return
    if point == "kill_during_checkpoint":
        os.killpg(os.getpgrp(), signal.SIGKILL)
    if point == "enospc_during_checkpoint":
        raise OSError(errno.ENOSPC, f"No space left on device (TFCTL_FAULT={name}:{at})")
    if point == "abort_at_exit":
        os.abort()
