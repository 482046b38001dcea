"""One `tfctl train` per run directory. A lock left by a killed process is noticed and cleared."""

import json
import os
import socket
import time
from pathlib import Path

import psutil

from tfctl.errors import UserError


def _process_start(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _is_stale(owner: dict) -> bool:
    """Stale: written on this host by a process that is gone (or whose pid now belongs to another)."""
    if owner.get("host") != socket.gethostname():
        return False  # another machine's lock: we cannot tell, so we respect it
    started = _process_start(int(owner.get("pid", -1)))
    return started is None or abs(started - owner.get("process_start", started)) > 1.0


class RunLock:
    def __init__(self, path: Path):
        self.path = path
        self.held = False

    def __enter__(self) -> "RunLock":
        me = {"pid": os.getpid(), "host": socket.gethostname(), "process_start": _process_start(os.getpid()),
              "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    owner = json.loads(self.path.read_text() or "{}")
                except (OSError, json.JSONDecodeError):
                    owner = {"host": socket.gethostname(), "pid": -1}  # a half-written lock: its writer died
                if not _is_stale(owner):
                    raise UserError(f"{self.path.parent}: in use by tfctl (pid {owner.get('pid')} on "
                                    f"{owner.get('host')} since {owner.get('since')}); wait for it or stop it") from None
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            return self
        raise UserError(f"{self.path}: could not take the run lock")

    def __exit__(self, *exc) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
