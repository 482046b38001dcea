"""What the stage loop checks before it trusts a stage directory, and how a machine error ends a stage.

- a stage marked done still has its export (else: refused, with the way to retrain it);
- a stage to (re)launch has no checkpoint written under other settings (a checkpoint wins over initial
  weights, so a stale one would silently train under old settings) and a writable directory;
- a full disk, a quota, a read-only or forbidden path is one line, the stage marked failed when possible.
"""

import errno
import os

from tfctl.errors import TrainingError, UserError
from tfctl.files import remove_tree
from tfctl.model_dir.config import is_model_dir
from tfctl.run.layout import RunDir
from tfctl.run.state import FAILED, RunState
from tfctl.stage.manifest import manifest_fingerprint

# Errors of the machine, not of tfctl: a full disk, a quota, a read-only or forbidden path.
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def check_finished(dirs: RunDir, name: str, hint: str) -> None:
    """A stage marked done still has its export (the next stage grows from it, eval loads it)."""
    if not is_model_dir(dirs.final(name)):
        raise UserError(
            f"{dirs.final(name)}: stage {name} is marked done but its export is missing; use {hint} to retrain it"
        )


def check_resumable(dirs: RunDir, name: str, fingerprint: str, hint: str) -> None:
    """Before launching a stage: none of its paths is a link, its checkpoints carry its current fingerprint,
    its directories are writable."""
    dirs.stage_paths(name)  # a link among them (worker.log, checkpoints/, final/ ...) is refused here
    checkpoints = dirs.checkpoints(name)
    if checkpoints.is_dir():
        for tag in sorted(p for p in checkpoints.iterdir() if p.is_dir() and p.name.startswith("step")):
            written = manifest_fingerprint(tag)
            if written is not None and written != fingerprint:
                raise UserError(
                    f"{tag}: written under other settings (fingerprint {written}, now {fingerprint}); "
                    f"use {hint} to discard it, or -o for a new run directory"
                )
    for path in (dirs.stage(name), checkpoints):
        if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
            raise UserError(f"{path}: not writable; fix its permissions and re-run")


def stopped_by_machine(
    dirs: RunDir, state: RunState, name: str, error: OSError, worker_reason: str | None, say
) -> TrainingError:
    """The one-line error of a stage stopped by the machine. Frees what its failed checkpoint save left
    (never used: the worker drops partial checkpoints when it resumes), then marks it failed (best effort)."""
    checkpoints = dirs.checkpoints(name)
    for partial in checkpoints.glob(".partial-*") if checkpoints.is_dir() else []:
        remove_tree(partial, dirs.root)
    try:
        state.update(name, status=FAILED, error=worker_reason or error.strerror)
    except OSError:
        say(f"[{name}] could not record the failure in {dirs.state} ({error.strerror})")
    where = f"{error.filename}: " if error.filename else ""
    return TrainingError(
        f"stage {name}: {worker_reason or where + error.strerror}; free space (or fix permissions) "
        f"and re-run the same command to resume from its last checkpoint"
    )
