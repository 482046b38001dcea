"""Writing files that other steps trust: complete or absent, never half-written.

Every write goes to a temporary sibling, is fsynced, renamed over the target, and the directory entry is
fsynced too, so a crash (or a full disk) at any point leaves the old file or the new one.
"""

import errno
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from tfctl.errors import UserError


def fsync_dir(path: str | Path) -> None:
    """Make a rename (or a new file) in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: str | Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def temporary_sibling(path: Path) -> Path:
    """A hidden name beside `path`, unique to this process."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Run `write(tmp)` to produce the file at a temporary sibling, then fsync and rename it to `path`."""
    path = Path(path)
    tmp = temporary_sibling(path)
    try:
        write(tmp)
        fsync_file(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | Path, value) -> Path:
    return atomic_write_text(path, json.dumps(value, indent=2) + "\n")


def is_inside(path: str | Path, root: str | Path) -> bool:
    """Whether `path`, links resolved, is `root` or below it (links resolved too)."""
    return Path(path).resolve().is_relative_to(Path(root).resolve())


def remove_tree(path: str | Path, owner: str | Path) -> None:
    """Delete the directory `path`, only if it lies inside `owner` (the run or cache directory that owns it)
    once links are resolved; a link is unlinked, never followed. Missing is fine."""
    path = Path(path)
    if path.is_symlink():
        path.unlink()
        return
    if not path.exists():
        return
    if not is_inside(path, owner) or Path(path).resolve() == Path(owner).resolve():
        raise UserError(f"{path}: refusing to delete it, it is not inside {owner}")
    shutil.rmtree(path, ignore_errors=True)


def under_run(path: str | Path, run: str | Path) -> Path:
    """`path`, which lies under the run directory `run`, checked so that a write or a delete there stays in
    the run: no part of it below `run` may be a link (a user's or an attacker's link would carry tfctl's
    writes elsewhere). Returns `path`; a link is a one-line UserError."""
    path, run = Path(path), Path(run)
    try:
        parts = path.relative_to(run).parts
    except ValueError:
        raise UserError(f"{path}: not inside the run directory {run}") from None
    current = run
    for part in parts:
        current = current / part
        if current.is_symlink():
            raise UserError(
                f"{current}: is a link; tfctl never writes or deletes through a link in a run (it may lead "
                "outside it): remove the link"
            )
    return path


def open_no_follow(path: str | Path, flags: int, mode: int = 0o644) -> int:
    """`os.open` that never follows a link at the last component (O_NOFOLLOW): a link there, or a
    directory where a file belongs, is a one-line UserError."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW, mode)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            what = "a link" if error.errno == errno.ELOOP else "not a regular file"
            raise UserError(f"{path}: is {what}; tfctl opens only its own regular file there") from None
        raise
