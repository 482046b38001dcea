"""Preemption: asked to stop, every rank saves a checkpoint at the step it is on and the stage exits with
EXIT_PREEMPTED, so that running the same `tfctl train` again (a requeued Slurm job) resumes it exactly.

How the request reaches the ranks (docs/cluster.md):
- Slurm warns the batch shell some minutes before the time limit (`#SBATCH --signal=B:USR1@M`); the batch
  script forwards SIGUSR1 to `tfctl train`. At a preemption or the limit itself Slurm sends SIGTERM to every
  process of the job (then SIGKILL after its KillWait).
- The orchestrator (`stop_requests`, around each stage's launch) answers SIGUSR1 and SIGTERM by writing the
  stage's STOP_FILE and keeps supervising: it is not killed, so its watchdog does not kill the ranks.
- Each rank (`PreemptionWatch`) answers SIGUSR1 and SIGTERM itself too, and rank 0 looks for STOP_FILE (a
  stat per step): whichever arrives first.
- After every step the ranks agree (a max all-reduce of one flag) so that all of them stop after the same
  step and write their parts of the same checkpoint.
"""

import contextlib
import signal
import threading
from pathlib import Path

from tfctl.errors import TrainingError
from tfctl.stage.exit_codes import EXIT_PREEMPTED

STOP_FILE = (
    "stop-requested"  # in the stage's directory; the orchestrator removes it before and after a launch
)
SIGNALS = (signal.SIGUSR1, signal.SIGTERM)


class StagePreempted(TrainingError):
    """A stage stopped on request, its checkpoint saved: exit EXIT_PREEMPTED, and the same command resumes."""

    exit_code = EXIT_PREEMPTED

    @classmethod
    def at_step(cls, stage: str, step: int, steps: int, tag: str) -> "StagePreempted":
        return cls(
            f"stage {stage}: preempted at step {step}/{steps}, checkpoint {tag} saved; "
            "run the same command again (or requeue the job) to resume"
        )


class PreemptionWatch:
    """A rank's view of a stop request. `agreed()` is collective: call it on every rank after every step."""

    def __init__(self, stage_dir: str | Path, rank: int, world_size: int):
        self.stop_file = Path(stage_dir) / STOP_FILE
        self.rank, self.world_size = rank, world_size
        self.signalled: int | None = None
        if threading.current_thread() is threading.main_thread():
            for number in SIGNALS:
                signal.signal(number, self._on_signal)

    def _on_signal(self, number: int, _frame) -> None:
        self.signalled = number  # acted on at the end of the step: a step is never cut in half

    def requested(self) -> bool:
        """This rank's own answer: a signal arrived, or (rank 0) the orchestrator wrote STOP_FILE."""
        return self.signalled is not None or (self.rank == 0 and self.stop_file.exists())

    def agreed(self, device) -> bool:
        """True on every rank when any rank was asked to stop."""
        import torch
        import torch.distributed as dist

        if self.world_size == 1:
            return self.requested()
        flag = torch.tensor(1.0 if self.requested() else 0.0, device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


class StopRequests:
    """The orchestrator's side: while `installed`, SIGUSR1 and SIGTERM do not end `tfctl train`; they set
    `requested` and, while a stage's ranks run (`stage`), write its STOP_FILE so the ranks checkpoint and exit.
    The stage loop starts no further stage once `requested` is set."""

    def __init__(self):
        self.requested = False
        self.stop_file: Path | None = None

    @contextlib.contextmanager
    def installed(self):
        """Around the whole stage loop; a no-op outside the main thread (signal handlers live there)."""
        self.requested = False
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {number: signal.signal(number, self._on_signal) for number in SIGNALS}
        try:
            yield self
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    @contextlib.contextmanager
    def stage(self, stage_dir: str | Path):
        """While one stage's ranks run: a request becomes its STOP_FILE."""
        stop_file = Path(stage_dir) / STOP_FILE
        stop_file.unlink(missing_ok=True)  # an earlier job's request is not one for this one
        self.stop_file = stop_file
        if self.requested:
            stop_file.touch()
        try:
            yield self
        finally:
            self.stop_file = None
            stop_file.unlink(missing_ok=True)  # acted on (or the stage ended first): nothing left behind

    def _on_signal(self, _number: int, _frame) -> None:
        self.requested = True
        if self.stop_file is not None:
            self.stop_file.touch()


stop_requests = StopRequests()  # one stage loop per process at a time: it and the signal handlers share this
