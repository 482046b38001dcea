"""How a worker ends, as an exit code the launcher and the orchestrator read."""

from tfctl.errors import TrainingError

EXIT_OK = 0
EXIT_TRAINING_ERROR = 1  # a failed save, an unloadable checkpoint
EXIT_USER_ERROR = 2  # a bad spec, missing data or weights: one line, no traceback
EXIT_NON_FINITE = 3  # the loss went NaN/inf; the last good checkpoint is intact
EXIT_PREEMPTED = (
    75  # asked to stop (Slurm's signal, SIGTERM): checkpoint saved, rerun to resume (EX_TEMPFAIL)
)
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGINT

# A line of rank 0's output that starts with this is for the user (resuming from a checkpoint, a corrupt one
# skipped): the orchestrator shows it even when the rest of the workers' output goes to worker.log only.
NOTICE_PREFIX = "[tfctl] "


class NonFiniteLossError(TrainingError):
    exit_code = EXIT_NON_FINITE

    def __init__(self, stage: str, step: int, loss: float, last_checkpoint: str | None):
        self.step, self.loss = step, loss
        where = f"last good checkpoint {last_checkpoint}" if last_checkpoint else "no checkpoint saved yet"
        super().__init__(f"stage {stage}: non-finite loss ({loss}) at step {step}; stopped, {where}")
