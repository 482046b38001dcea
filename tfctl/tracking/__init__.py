"""Where metrics go: the run's metrics.jsonl, W&B (the only package that imports wandb), the console."""

from tfctl.tracking.console import Console
from tfctl.tracking.metrics_file import MetricsFile, read_metrics
from tfctl.tracking.tracker import Tracker

__all__ = ["Console", "MetricsFile", "Tracker", "read_metrics"]
