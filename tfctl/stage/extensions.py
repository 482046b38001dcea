"""DeepSpeed's JIT-built C++ ops (on CPU: `deepspeed_shm_comm`): where they are built, and no silent wait.

torch builds an extension in $TORCH_EXTENSIONS_DIR/<name>/ (default ~/.cache/torch_extensions/<py>_<device>/)
while holding `lock` there: a file created with O_EXCL, held open, and removed when the build ends. Every other
process waits while that file exists — forever and without a word when the builder was killed (issue 15,
item 3). And ~/.cache/torch_extensions is shared by every environment of the user, so environments whose
build commands differ rebuild the op in turn.

- Each environment gets its own directory, <sys.prefix>/torch_extensions (an explicit $TORCH_EXTENSIONS_DIR
  wins), and builds with its own ninja; `make setup` builds the op there once: `python -m tfctl.worker.ds_ops`.
- `wait_for_build_lock` replaces torch's wait: a lock that no process holds open is stale and reported at once,
  in one line naming the file; a held one is waited on, with a message, up to a timeout.

The launcher checks the locks before a multi-rank start; the ranks use the directory and the bounded wait.
What touches DeepSpeed itself (skipping or building the op) is the rank's: tfctl/worker/ds_ops.py.
"""

import os
import sys
import time
from pathlib import Path

from tfctl.errors import UserError

EXTENSIONS_DIR = "TORCH_EXTENSIONS_DIR"
LOCK_TIMEOUT = 900.0  # seconds: the first build takes about a minute on 2 idle cores, several when busy
STALE_GRACE = 2.0  # a lock briefly outlives its holder's close() before torch removes it


def default_extensions_dir() -> Path:
    return Path(sys.prefix) / "torch_extensions"


def extensions_dir() -> Path:
    """Where this process's DeepSpeed ops are built: $TORCH_EXTENSIONS_DIR, else this environment's own."""
    return Path(os.environ.get(EXTENSIONS_DIR) or default_extensions_dir())


def use_environment_extensions_dir() -> Path:
    """Build and load ops in this environment's directory unless $TORCH_EXTENSIONS_DIR says otherwise, with
    this environment's ninja when it has one. Two ninja versions hash the same build commands differently
    (seen: the venv's 1.13 and the system's 1.11), so processes that find different ones on $PATH rebuild
    the op in turn, minutes each on a busy machine, every other start waiting on the lock meanwhile."""
    os.environ.setdefault(EXTENSIONS_DIR, str(default_extensions_dir()))
    tools = Path(sys.executable).parent
    if (tools / "ninja").is_file() and os.environ.get("PATH", "").split(os.pathsep)[0] != str(tools):
        os.environ["PATH"] = os.pathsep.join([str(tools), os.environ.get("PATH", "")])
    return extensions_dir()


def lock_holders(lock: Path) -> list[int] | None:
    """Pids of the processes that hold `lock` open, from /proc; None where /proc cannot tell (not Linux)."""
    if not os.path.isdir("/proc/self/fd"):
        return None
    target = os.path.realpath(lock)
    holders = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if any(os.readlink(fd.path) == target for fd in os.scandir(f"/proc/{entry.name}/fd")):
                holders.append(int(entry.name))
        except OSError:  # gone, or another user's process
            continue
    return holders


def _is_stale(lock: Path) -> bool:
    """No process we can see holds the lock, it stays past a grace period, and it is ours (not another user's
    build we cannot inspect)."""
    try:
        first = lock.stat()
    except FileNotFoundError:
        return False
    if first.st_uid != os.getuid() or lock_holders(lock) != []:
        return False
    time.sleep(STALE_GRACE)
    try:
        return lock.stat().st_ino == first.st_ino and lock_holders(lock) == []
    except FileNotFoundError:
        return False


def wait_for_build_lock(
    lock: str | Path, timeout: float = LOCK_TIMEOUT, poll: float = 0.5, say=print
) -> None:
    """Return once `lock` is gone; a stale lock, or one still held after `timeout` seconds, is a UserError."""
    lock = Path(lock)
    started, announced = time.monotonic(), False
    while lock.exists():
        if _is_stale(lock):
            raise stale_lock_error(lock)
        holders = lock_holders(lock) or "unknown"
        if time.monotonic() - started > timeout:
            raise UserError(
                f"{lock}: still locked after {timeout:.0f} s (held by pid {holders}); "
                f"stop that build or delete the file, then re-run"
            )
        if not announced:
            say(f"waiting for {lock}: pid {holders} is building a DeepSpeed op")
            announced = True
        time.sleep(poll)


def stale_lock_error(lock: Path) -> UserError:
    return UserError(
        f"{lock}: stale lock of a DeepSpeed op build that was killed (no process holds it); "
        f"delete the file and re-run"
    )


def check_build_locks(root: Path) -> None:
    """Refuse, in one line naming the file, a stale build lock under `root` (an extensions directory)."""
    if root.is_dir():
        for lock in sorted(root.glob("**/lock")):
            if _is_stale(lock):
                raise stale_lock_error(lock)


def bound_torch_lock_waits() -> None:
    """Make torch's extension loader wait on a build lock through `wait_for_build_lock`, never forever."""
    from torch.utils.file_baton import FileBaton

    FileBaton.wait = lambda baton: wait_for_build_lock(baton.lock_file_path)
