"""The tracking fan-out of rank 0: every record goes to metrics.jsonl, W&B and the console."""

import logging
from pathlib import Path

from tfctl.tracking.console import Console
from tfctl.tracking.metrics_file import MetricsFile

log = logging.getLogger(__name__)


class Tracker:
    def __init__(self, metrics_path: str | Path, console: Console, wandb_run=None):
        self.metrics = MetricsFile(metrics_path)
        self.console = console
        self.wandb = wandb_run

    def log(self, record: dict) -> None:
        self.metrics.write(record)
        if self.wandb is not None:
            self.wandb.log(record)
        kind = record.get("kind")
        if kind == "train":
            self.console.train(record)
        elif kind == "eval":
            self.console.eval(record)

    def close(self, exit_code: int = 0) -> None:
        self.metrics.close()
        self.console.close()
        if self.wandb is not None:
            self.wandb.finish(exit_code)
