"""The run's `metrics.jsonl`: one JSON object per line, appended by rank 0 of the running stage.

Every record has `kind` (train | eval | stage_end | error | growth ...), `stage`, `step`, and the cumulative
run axes `tokens` / `flops`. No duplicates: when a stage (re)starts at step s, the records of that stage
with step > s (what a killed attempt wrote past its last checkpoint) are dropped first — the file is
rewritten atomically. `read_metrics` also dedupes by (kind, stage, step), keeping the last, for files
written by anything else.

This is the one reader of the file: a torn last line (a crash mid-write) or any line that is not a JSON
object is skipped, never an error.
"""

import json
import math
import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from tfctl.files import atomic_write_text

KEEP_ON_RESUME = ("error",)  # history of failed attempts is kept


def _clean(value):
    """JSON has no NaN/inf: write them as strings a reader can still see."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _step(record: dict) -> int:
    step = record.get("step", 0)
    return step if isinstance(step, int) else 0


def iter_records(path: str | Path) -> Iterator[tuple[str, dict | None]]:
    """(line, record) for every line of the file; record is None for a line that is not a JSON object."""
    path = Path(path)
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        yield line, record if isinstance(record, dict) else None


def read_metrics(path: str | Path, kind: str | None = None, stage: str | None = None) -> list[dict]:
    """Records in file order, deduplicated by (kind, stage, step) keeping the last; damaged lines skipped."""
    records: dict[tuple, dict] = {}
    for _, record in iter_records(path):
        if record is None:
            continue
        if (kind is None or record.get("kind") == kind) and (stage is None or record.get("stage") == stage):
            key = (record.get("kind"), record.get("stage"), record.get("step"))
            records.pop(key, None)
            records[key] = record
    return list(records.values())


class MetricsFile:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = None

    def keep_only(self, keep: Callable[[dict], bool]) -> int:
        """Rewrite the file (atomically) with the records `keep` accepts; damaged lines go too.
        Returns how many lines were dropped."""
        kept, dropped = [], 0
        for line, record in iter_records(self.path):
            if record is not None and keep(record):
                kept.append(line)
            else:
                dropped += 1
        if dropped:
            atomic_write_text(self.path, "".join(line + "\n" for line in kept))
        return dropped

    def truncate_stage(self, stage: str, after_step: int) -> int:
        """Drop this stage's records with step > after_step; returns how many lines were dropped."""
        return self.keep_only(
            lambda r: r.get("stage") != stage or r.get("kind") in KEEP_ON_RESUME or _step(r) <= after_step
        )

    def drop_stages(self, stages: set[str]) -> int:
        """Drop every record of `stages` (for --force / --retrain)."""
        return self.keep_only(lambda r: r.get("stage") not in stages)

    def write(self, record: dict) -> None:
        self.write_many([record])

    def write_many(self, records: list[dict]) -> None:
        """Append `records`, one line each, in one write."""
        if self._file is None:
            self._file = open(self.path, "a")
        self._file.write("".join(json.dumps({k: _clean(v) for k, v in r.items()}) + "\n" for r in records))
        self._file.flush()

    def sync(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self.sync()
            self._file.close()
            self._file = None


class MetricsFollower:
    """Follow metrics.jsonl while a stage writes it: `poll()` returns the records appended since the last call.

    Starts at the file's current end (what earlier stages wrote is not news). A file replaced under it (a
    resumed stage drops the records a killed attempt wrote past its checkpoint) is read again from the top,
    less the lines that were there at the start (each once: a resumed stage may write an identical record
    again, such as its step-0 eval); a half-written last line waits for the next poll.
    """

    def __init__(self, path: str | Path, from_start: bool = False):
        self.path = Path(path)
        self._inode, self._offset, self._partial = None, 0, b""
        self._old_lines: Counter = Counter()  # hashes of the lines that were not news, for a replaced file
        self._replaced = False
        if not from_start and self.path.is_file():
            with open(self.path, "rb") as f:
                stat = os.fstat(f.fileno())
                self._old_lines = Counter(hash(line) for line in f.read().split(b"\n") if line)
            self._inode, self._offset = stat.st_ino, stat.st_size

    def poll(self) -> list[dict]:
        try:
            with open(self.path, "rb") as f:
                stat = os.fstat(f.fileno())
                if stat.st_ino != self._inode or stat.st_size < self._offset:
                    self._inode, self._offset, self._partial = stat.st_ino, 0, b""
                    self._replaced = True
                f.seek(self._offset)
                chunk = f.read()
        except OSError:
            return []
        self._offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        records = []
        for line in lines:
            if self._replaced and self._old_lines[hash(line)] > 0:  # in the replaced file, not news
                self._old_lines[hash(line)] -= 1
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records
