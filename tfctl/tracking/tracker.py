"""The tracking fan-out of rank 0: every record goes to metrics.jsonl, W&B and the console.

Train records come every step, so they are batched (issue 28): held until `flush_seconds` have passed since
the last flush (the first one of a stage goes out at once), then written to metrics.jsonl in one write, sent
to W&B one by one, and the latest of them shown on the console. Any other record (eval, stage_end, error)
flushes the held ones first, then goes out itself: the file keeps every record in step order, and the
stage's last step is always logged (its eval follows it). `flush()` before a checkpoint and `close()` leave
nothing held. A crash loses at most `flush_seconds` of train records, all past the last checkpoint, which
a resumed stage drops anyway.
"""

import logging
import time
from pathlib import Path

from tfctl.tracking.console import Console
from tfctl.tracking.metrics_file import MetricsFile

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0  # how long train records are held at most


class Tracker:
    def __init__(
        self, metrics_path: str | Path, console: Console, wandb_run=None, flush_seconds: float = FLUSH_SECONDS
    ):
        self.metrics = MetricsFile(metrics_path)
        self.console = console
        self.wandb = wandb_run
        self.flush_seconds = flush_seconds
        self._held: list[dict] = []
        self._flushed_at = float("-inf")

    def log(self, record: dict) -> None:
        if record.get("kind") == "train":
            self._held.append(record)
            if time.monotonic() - self._flushed_at >= self.flush_seconds:
                self.flush()
            return
        self.flush()
        self.metrics.write(record)
        self._to_wandb([record])
        if record.get("kind") == "eval":
            self.console.eval(record)

    def flush(self) -> None:
        """Write out the held train records (the clock of `flush_seconds` restarts only when there were some:
        a stage's first train record goes out at once, even right after its step-0 evaluation)."""
        if not self._held:
            return
        self._flushed_at = time.monotonic()
        held, self._held = self._held, []
        self.metrics.write_many(held)
        self._to_wandb(held)
        self.console.train(held[-1])

    def _to_wandb(self, records: list[dict]) -> None:
        if self.wandb is not None:
            for record in records:
                self.wandb.log(record)

    def close(self, exit_code: int = 0) -> None:
        self.flush()
        self.metrics.close()
        self.console.close()
        if self.wandb is not None:
            self.wandb.finish(exit_code)
