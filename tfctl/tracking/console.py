"""What rank 0 shows: a rich progress bar (ETA, loss, tok/s) on a terminal, plain lines otherwise."""

import sys


class Console:
    def __init__(self, stage: str, total_steps: int, start_step: int = 0, interactive: bool | None = None):
        self.stage = stage
        self.total_steps = total_steps
        self.interactive = sys.stdout.isatty() if interactive is None else interactive
        self._progress = None
        if self.interactive:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn(f"[bold]{stage}[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[status]}"),
                transient=False,
            )
            self._task = self._progress.add_task(stage, total=total_steps, completed=start_step, status="")
            self._progress.start()

    def message(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text)
        else:
            print(text, flush=True)

    def train(self, record: dict) -> None:
        status = f"loss {record['loss']:.4f}  lr {record['lr']:.2e}  {record['tokens_per_second']:,.0f} tok/s"
        if self._progress is not None:
            self._progress.update(self._task, completed=record["step"], status=status)
        else:
            self.message(
                f"[{self.stage}] step {record['step']}/{self.total_steps}  {status}  "
                f"grad_norm {record['grad_norm']:.3f}  mfu {record['mfu']:.2%}"
            )

    def eval(self, record: dict) -> None:
        self.message(
            f"[{self.stage}] step {record['step']}  val_loss {record['val_loss']:.4f}  "
            f"val_ppl {record['val_ppl']:.2f}"
        )

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
