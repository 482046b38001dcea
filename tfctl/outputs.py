"""Output directories a command writes (`export --hf`, `import -o`, `grow -o`, a stage's `final/` and `init/`):
they never destroy what is there, and they are complete or absent.

The rule, one place for every command:

- `claim_output`: a path that exists and is not tfctl's own output of the same kind (a user's folder, a run,
  a model directory where an HF package is asked for, a file, a link) is refused in one line. `--force`
  lets tfctl add its files to a non-empty folder of the user's, and even then only tfctl's own file names
  are written there (one of them already present, not written by tfctl: still refused) and nothing else
  in the folder is touched. A path inside a run directory is never an output: the run's files are tfctl's
  to manage.
- `output_writer`: the files are written into a temporary sibling named with this process's pid,
  fsynced, then moved into place: the whole directory renamed when the target held only tfctl's files,
  file by file when it also holds the user's. Temporary and set-aside siblings of dead processes are
  removed (a set-aside copy put back where its target is missing) the next time the same output is written.
"""

import contextlib
import errno
import glob
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tfctl.errors import UserError
from tfctl.files import fsync_dir, fsync_file

# what a failed write of an output reports in one line, naming the output (anything else is a bug: loud)
WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG)


@dataclass(frozen=True)
class OutputKind:
    name: str  # "model directory", "Hugging Face export": what the messages call it
    files: tuple[str, ...]  # every file name tfctl writes in one
    recognise: Callable[[Path], bool]  # an existing directory is one tfctl wrote


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def sibling(out: Path, role: str, pid: int | None = None) -> Path:
    """`.NAME.tmp-PID` (being written) or `.NAME.old-PID` (the previous output, set aside) beside `out`."""
    return out.with_name(f".{out.name}.{role}-{os.getpid() if pid is None else pid}")


def remove_stale_siblings(out: Path) -> None:
    """Temporary and set-aside siblings of `out` whose process is dead (killed mid-write): a set-aside
    previous output goes back where it was when nothing replaced it; the rest is deleted."""
    if not out.parent.is_dir():
        return
    for path in sorted(out.parent.glob(f".{glob.escape(out.name)}.*-*")):
        role, _, pid = path.name[len(out.name) + 2 :].rpartition("-")
        if role not in ("tmp", "old") or not pid.isdigit() or pid_alive(int(pid)):
            continue
        if role == "old" and not out.exists() and not out.is_symlink():
            os.replace(path, out)
        elif path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def enclosing_run(path: Path) -> Path | None:
    """The run directory (one holding state.json and recipe.yaml) that `path` is, or lies in."""
    for candidate in (path, *path.parents):
        if (candidate / "state.json").is_file() and (candidate / "recipe.yaml").is_file():
            return candidate
    return None


def absolute(path: str | Path) -> Path:
    """`path` made absolute and normalised (`.` gets a name), links not followed."""
    return Path(os.path.abspath(Path(path).expanduser()))


def claim_output(
    out: str | Path, kind: OutputKind, force: bool = False, sources: tuple[Path, ...] = ()
) -> Path:
    """Check that `out` may be written as a `kind` (see the module doc); returns it absolute. Nothing is
    written. `sources` (what the command reads) may be neither `out` nor inside it, nor contain it."""
    out = absolute(out)
    if out.is_symlink():
        raise UserError(f"{out}: is a link; give the directory itself (tfctl never writes through a link)")
    for source in sources:
        source = absolute(source).resolve()
        if source.is_relative_to(out.resolve()) or out.resolve().is_relative_to(source):
            raise UserError(f"{out}: is, holds or lies in the input {source}; choose another output")
    run = enclosing_run(out)
    if run is not None:
        raise UserError(
            f"{out}: lies in the run directory {run}, which tfctl manages; choose a path outside it"
        )
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory; choose a new or empty directory")
    if not out.exists() or not any(out.iterdir()) or kind.recognise(out):
        return out
    if not force:
        raise UserError(
            f"{out}: exists and is not a {kind.name} written by tfctl; choose a new or empty directory, "
            "or --force to add tfctl's files to it (nothing else in it is touched)"
        )
    clashes = [name for name in kind.files if os.path.lexists(out / name)]
    if clashes:
        raise UserError(
            f"{out}: already holds {clashes[0]}, which tfctl did not write; --force replaces none"
        )
    return out


@contextlib.contextmanager
def output_writer(out: str | Path, kind: OutputKind) -> Iterator[Path]:
    """A temporary directory beside `out` to write a `kind` into. When the block ends normally its files
    are fsynced and moved to `out`; when it raises (a full disk, a refusal, Ctrl-C) it is removed and `out`
    is left as it was. The caller has claimed `out` (`claim_output`) or owns it (a run's stage)."""
    out = absolute(out)
    remove_stale_siblings(out)
    tmp = sibling(out, "tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        yield tmp
        for name in os.listdir(tmp):
            fsync_file(tmp / name)
        publish(tmp, out, kind)
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        code = write_errno(error)
        if code is not None:
            raise UserError(
                f"{out}: {os.strerror(code)} while writing it; nothing was written there"
            ) from None
        raise


def write_errno(error: BaseException) -> int | None:
    """The errno of a failed write: an OSError's, or the `(os error N)` a Rust writer (safetensors) reports."""
    if isinstance(error, OSError):
        code = error.errno
    else:
        found = re.search(r"\(os error (\d+)\)", str(error)) if isinstance(error, Exception) else None
        code = int(found.group(1)) if found else None
    return code if code in WRITE_ERRORS else None


def publish(tmp: Path, out: Path, kind: OutputKind) -> None:
    """Move the finished `tmp` to `out`: a directory rename when `out` is absent or holds only tfctl's files
    (the old one set aside, then deleted), else tfctl's files one by one beside the user's."""
    present = set(os.listdir(out)) if out.is_dir() else None
    if present is None:
        os.replace(tmp, out)
    elif present <= set(kind.files):
        old = sibling(out, "old")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        written = set(os.listdir(tmp))
        for name in sorted(present & set(kind.files) - written):
            (out / name).unlink()  # tfctl's own file of the previous output, absent from this one
        for name in sorted(written):
            os.replace(tmp / name, out / name)
        tmp.rmdir()
        fsync_dir(out)
    fsync_dir(out.parent)
