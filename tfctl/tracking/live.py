"""What `tfctl train` and `tfctl compare` show while the ranks work, fed by rank 0's records in metrics.jsonl.

On a terminal: a live bar per stage (step/steps, elapsed, ETA; loss, tokens, tok/s and MFU under it) and a
spinner for long work outside training (data preparation, growth). Anywhere else (CI, `| tee`): a compact
line every tenth of a stage. Either way, eval results as they come and one summary table per stage at its
end. The orchestrator follows the file the worker writes anyway: no parsing of the workers' text, whose
output (DeepSpeed's and the launcher's included) goes to the stage's worker.log only, unless --verbose.
"""

import math
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from tfctl.model.sizes import format_count
from tfctl.tracking.metrics_file import MetricsFollower
from tfctl.tracking.wandb_ids import sync_paths

LINES_PER_STAGE = 10  # compact lines per stage when not on a terminal
POLL_SECONDS = 0.25
QUIET_SECONDS = 2.0  # work outside training shorter than this is not reported off a terminal


def clock(seconds: float | None) -> str:
    """12.3 → "0:12", 3723 → "1:02:03"; None → "-:--"."""
    if seconds is None or not math.isfinite(seconds):
        return "-:--"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def rate(value: float) -> str:
    return f"{value / 1e3:.1f}k" if value >= 1e4 else f"{value:,.0f}"


def mfu_text(value: float | None) -> str:
    """12.3%; a dash for none, and for a rate that set the peak itself (MFU 1 by construction, not a
    utilisation to compare: the worker's own notice says so, tfctl.stage.throughput.Peak)."""
    return "—" if value is None or value >= 0.9995 else f"{value:.1%}"


def ended_worse(result: dict) -> str | None:
    """A stage that ended with a higher val loss than its step-0 eval, in words; else None."""
    start, end = result.get("start_val_loss"), result.get("val_loss")
    if start is None or end is None or not end > start:
        return None
    return (
        f"ended worse than it started: val ppl {result['start_val_ppl']:.2f} → {result['val_ppl']:.2f} "
        f"in {result.get('steps', '?')} steps"
    )


class _TwoLineProgress(Progress):
    """A progress bar with the stage's latest numbers on a line of their own (80 columns fit both)."""

    def get_renderables(self):
        yield self.make_tasks_table(self.tasks)
        for task in self.tasks:
            if task.fields.get("numbers"):
                yield Text("     " + task.fields["numbers"])


class StageDisplay:
    """Follows one stage's records while its ranks run (a thread polling metrics.jsonl) and shows them."""

    def __init__(self, display: "RunDisplay", stage: str, total_steps: int, metrics_path: str | Path):
        self.display, self.stage, self.total = display, stage, max(1, total_steps)
        self.follower = MetricsFollower(metrics_path)
        self.every = max(1, math.ceil(self.total / LINES_PER_STAGE))
        self.started = time.monotonic()
        self.first: tuple[float, int] | None = None  # (time, step) of the first train record seen
        self.end: dict | None = None
        self._next_line = self.every
        self._progress = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name=f"progress-{stage}", daemon=True)

    def __enter__(self) -> "StageDisplay":
        if self.display.interactive:
            self._progress = _TwoLineProgress(
                TextColumn(f"[bold]{escape(self.display.tagged(f'[{self.stage}]'))}[/]"),
                BarColumn(bar_width=None),
                MofNCompleteColumn(),
                TextColumn("steps"),
                TimeElapsedColumn(),
                TextColumn("ETA {task.fields[eta]}"),
                console=self.display.console,
                transient=True,
                expand=True,
            )
            self._task = self._progress.add_task(
                self.stage, total=self.total, eta="-:--", numbers="starting the ranks…"
            )
            self._progress.start()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._drain()  # what the last poll missed
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def _follow(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self._drain()

    def _drain(self) -> None:
        for record in self.follower.poll():
            if record.get("stage") == self.stage:
                self.handle(record)

    # ------------------------------------------------------------------------------------------- records
    def eta(self, step: int, now: float) -> float | None:
        """Seconds left at the pace seen since the first train record of this display (resumes included)."""
        if self.first is None or step <= self.first[1] or now <= self.first[0]:
            return None
        return (self.total - step) * (now - self.first[0]) / (step - self.first[1])

    def handle(self, record: dict, now: float | None = None) -> None:
        kind, now = record.get("kind"), time.monotonic() if now is None else now
        if kind == "train":
            self._train(record, now)
        elif kind == "eval":
            self.display.print(
                f"[{self.stage}] eval at step {record['step']}: val loss {record['val_loss']:.4f}, "
                f"ppl {record['val_ppl']:.2f}"
            )
        elif kind == "stage_end":
            self.end = record

    def _train(self, record: dict, now: float) -> None:
        step = int(record["step"])
        if self.first is None:
            self.first = (now, step)
        numbers = (
            f"loss {record['loss']:.4f} · {format_count(record.get('stage_tokens', 0))} tokens · "
            f"{rate(record['tokens_per_second'])} tok/s · MFU {mfu_text(record.get('mfu'))}"
        )
        eta = clock(self.eta(step, now))
        if self._progress is not None:
            self._progress.update(self._task, completed=step, eta=eta, numbers=numbers)
        elif step >= self._next_line or step == self.total:
            self._next_line = (step // self.every + 1) * self.every
            self.display.print(
                f"[{self.stage}] step {step}/{self.total} · {numbers} · "
                f"{clock(now - self.started)} elapsed · ETA {eta}"
            )


class RunDisplay:
    """The console of one `tfctl train` / `compare` call: stage displays, activities, stage tables."""

    def __init__(
        self,
        interactive: bool | None = None,
        verbose: bool = False,
        console: Console | None = None,
        tag: str | None = None,
    ):
        self.interactive = sys.stdout.isatty() if interactive is None else interactive
        self.verbose = verbose  # workers' own output on the console too (it always goes to worker.log)
        self.console = console or Console(highlight=False)
        self.tag = tag  # the run (and seed) on every line, when several runs share the console (compare -j N)
        self._wandb_said = False

    def tagged(self, text: str) -> str:
        prefix = f"[{self.tag}] "
        return text if self.tag is None or text.startswith(prefix) else prefix + text

    def print(self, text: str) -> None:
        self.console.print(self.tagged(text), markup=False, highlight=False, soft_wrap=True)  # never cut

    def stage(self, name: str, total_steps: int, metrics_path: str | Path) -> StageDisplay:
        return StageDisplay(self, name, total_steps, metrics_path)

    @contextmanager
    def activity(self, description: str):
        """A spinner with the elapsed time on a terminal; elsewhere one line once done, if it took a while."""
        started, description = time.monotonic(), self.tagged(description)
        if self.interactive:
            with Progress(
                SpinnerColumn(),
                TextColumn(escape(description)),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            ) as progress:
                progress.add_task(description, total=None)
                yield
            return
        yield
        seconds = time.monotonic() - started
        if seconds >= QUIET_SECONDS:
            self.print(f"{description}: done in {clock(seconds)}")

    def wandb_notice(self, mode: str, run_dirs: list[Path]) -> None:
        """Once per command: where offline W&B runs are and the command that uploads them."""
        offline = [path for d in run_dirs for path in sync_paths(d)]  # a copy's inherited runs left out
        if mode != "offline" or not offline or self._wandb_said:
            return
        self._wandb_said = True
        self.print("W&B logged offline (no API key, or WANDB_MODE=offline); to upload:")
        self.print(f"  wandb sync {' '.join(offline)}")

    def stage_done(self, stage: str, result: dict) -> None:
        """One summary table per stage: what it cost and where it ended."""
        table = Table(title=Text(self.tagged(f"[{stage}] done"), style="bold"), title_justify="left")
        columns = ("stage", "params", "tokens", "FLOPs", "val loss", "val ppl", "wall", "MFU")
        for column in columns:
            table.add_column(column, justify="left" if column == "stage" else "right", no_wrap=True)
        mfu = result.get("mfu")
        table.add_row(
            stage,
            format_count(result["params"]),
            format_count(result.get("stage_tokens", result["tokens"])),
            f"{result.get('stage_flops', result['flops']):.3g}",
            f"{result['val_loss']:.4f}",
            f"{result['val_ppl']:.2f}",
            clock(result["wall_seconds"]),
            mfu_text(mfu),
        )
        worse = ended_worse(result)
        if worse:
            table.caption, table.caption_justify = worse, "left"
        self.console.print(table)
