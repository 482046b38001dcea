"""The run's `metrics.jsonl`: one JSON object per line, appended by rank 0 of the running stage.

Every record has `kind` (train | eval | stage_end | error | growth ...), `stage`, `step`, and the cumulative
run axes `tokens` / `flops`. No duplicates: when a stage (re)starts at step s, the records of that stage
with step > s (what a killed attempt wrote past its last checkpoint) are dropped first — the file is
rewritten atomically. `read_metrics` also dedupes by (kind, stage, step), keeping the last, for files
written by anything else.
"""

import json
import math
import os
from pathlib import Path

KEEP_ON_RESUME = ("error",)  # history of failed attempts is kept


def _clean(value):
    """JSON has no NaN/inf: write them as strings a reader can still see."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class MetricsFile:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = None

    def truncate_stage(self, stage: str, after_step: int) -> int:
        """Drop this stage's records with step > after_step; returns how many were dropped."""
        if not self.path.is_file():
            return 0
        kept, dropped = [], 0
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                dropped += 1  # a torn last line from a crash
                continue
            if (
                record.get("stage") == stage
                and record.get("kind") not in KEEP_ON_RESUME
                and int(record.get("step", 0)) > after_step
            ):
                dropped += 1
                continue
            kept.append(line)
        if dropped:
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text("".join(line + "\n" for line in kept))
            os.replace(tmp, self.path)
        return dropped

    def write(self, record: dict) -> None:
        if self._file is None:
            self._file = open(self.path, "a")
        self._file.write(json.dumps({k: _clean(v) for k, v in record.items()}) + "\n")
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


def read_metrics(path: str | Path, kind: str | None = None, stage: str | None = None) -> list[dict]:
    """Records in file order, deduplicated by (kind, stage, step) keeping the last; torn lines skipped."""
    records: dict[tuple, dict] = {}
    path = Path(path)
    if not path.is_file():
        return []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if (kind is None or record.get("kind") == kind) and (stage is None or record.get("stage") == stage):
            key = (record.get("kind"), record.get("stage"), record.get("step"))
            records.pop(key, None)
            records[key] = record
    return list(records.values())


class MetricsFollower:
    """Follow metrics.jsonl while a stage writes it: `poll()` returns the records appended since the last call.

    Starts at the file's current end (what earlier stages wrote is not news). A file replaced under it (a
    resumed stage drops the records a killed attempt wrote past its checkpoint) is read again from the top;
    a half-written last line waits for the next poll.
    """

    def __init__(self, path: str | Path, from_start: bool = False):
        self.path = Path(path)
        self._inode, self._offset, self._partial = None, 0, b""
        if not from_start and self.path.is_file():
            stat = self.path.stat()
            self._inode, self._offset = stat.st_ino, stat.st_size

    def poll(self) -> list[dict]:
        try:
            with open(self.path, "rb") as f:
                stat = os.fstat(f.fileno())
                if stat.st_ino != self._inode or stat.st_size < self._offset:
                    self._inode, self._offset, self._partial = stat.st_ino, 0, b""
                f.seek(self._offset)
                chunk = f.read()
        except OSError:
            return []
        self._offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records
