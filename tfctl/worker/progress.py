"""Where a stage stands (saved in every checkpoint) and the run's cumulative axes derived from it."""

import time
from dataclasses import asdict, dataclass, field


@dataclass
class StageProgress:
    step: int = 0  # optimizer steps done in this stage
    stage_tokens: int = 0
    wall_seconds: float = 0.0  # worker wall time of earlier attempts, up to their last checkpoint
    step_seconds: float = 0.0  # time inside training steps (no start-up, eval, checkpoint): what MFU divides
    timed_steps: int = 0  # the steps step_seconds covers (a checkpoint from before it was kept has none)
    sampler: dict = field(default_factory=dict)
    wandb_run_id: str | None = None
    val_loss: float | None = None  # the last evaluation, and its step
    val_step: int | None = None
    world_size: int = 1
    optimizer_step_offset: int = 0  # Adam steps behind carried moments (spec.init_optimizer), else 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "StageProgress":
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


class RunAxes:
    """Cumulative tokens / FLOPs / device-seconds over the whole run: this stage's plus the spec's offsets."""

    def __init__(
        self, spec, flops_per_token: int, world_size: int, wall_before: float, started: float | None = None
    ):
        self.spec, self.flops_per_token, self.world_size = spec, flops_per_token, world_size
        self.wall_before = wall_before
        self.started = time.perf_counter() if started is None else started  # the worker's start: setup counts

    def wall_seconds(self) -> float:
        return self.wall_before + time.perf_counter() - self.started

    def fields(self, stage_tokens: int) -> dict:
        spec, wall = self.spec, self.wall_seconds()
        return {
            "tokens": spec.tokens_offset + stage_tokens,
            "stage_tokens": stage_tokens,
            "flops": spec.flops_offset + self.flops_per_token * stage_tokens,
            "stage_flops": float(self.flops_per_token * stage_tokens),
            "wall_seconds": wall,
            "device_seconds": spec.device_seconds_offset + wall * self.world_size,
        }
