"""One `tfctl train` per run directory: an exclusive `flock` on `<run>/.lock`, holding who took it.

The kernel drops the lock when its holder dies, however it dies (SIGKILL included): a lock file left by a
killed process is stale by construction, noticed and taken over. The file's JSON (pid, host, since) is only
for the message a refused second caller prints. Across hosts this relies on the filesystem's locks (NFSv4
has them).
"""

import fcntl
import json
import os
import socket
import stat
import time
from pathlib import Path

from tfctl.errors import UserError
from tfctl.files import open_no_follow


class RunLock:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd: int | None = None

    @property
    def held(self) -> bool:
        return self.fd is not None

    def __enter__(self) -> "RunLock":
        for _ in range(5):
            fd = open_no_follow(self.path, os.O_RDWR | os.O_CREAT)  # never a link's target
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                error = self._in_use(fd)
                os.close(fd)
                raise error from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # its holder unlinked it between our open and our flock: take the new file
                os.close(fd)
                continue
            me = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
            self.fd = fd
            return self
        raise UserError(f"{self.path}: could not take the run lock")

    def check_free(self) -> None:
        """Refuse now, writing nothing, if another process holds the lock (what `train` asks before it
        prepares data); the lock itself is taken later, with `with`."""
        try:
            fd = open_no_follow(self.path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO never blocks
        except FileNotFoundError:
            return
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise UserError(f"{self.path}: not a regular file; remove it (tfctl's run lock goes there)")
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise self._in_use(fd) from None
        finally:
            os.close(fd)

    def _in_use(self, fd: int) -> UserError:
        owner = self._owner(fd)
        return UserError(
            f"{self.path.parent}: in use by tfctl (pid {owner.get('pid', '?')} on "
            f"{owner.get('host', '?')} since {owner.get('since', '?')}); wait for it or stop it"
        )

    @staticmethod
    def _owner(fd: int) -> dict:
        try:
            owner = json.loads(os.pread(fd, 4096, 0) or b"{}")
        except (OSError, ValueError):
            return {}
        return owner if isinstance(owner, dict) else {}

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self.fd)
            self.fd = None
