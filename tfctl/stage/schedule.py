"""The learning rate: linear warmup, then cosine decay to `min_lr` (nanoGPT's `get_lr`).

One schedule per stage by default (the paper restarts warmup + cosine at every stage). A stage can instead
sit at `offset` inside a longer schedule of `total` steps ("continue" across stages): its step s then reads
the schedule at `offset + s`.
"""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class CosineSchedule:
    lr: float
    min_lr: float
    warmup_steps: int
    total_steps: int  # length of the whole schedule (this stage's steps, or all stages' when continued)
    offset: int = 0  # schedule steps done before this stage

    @classmethod
    def from_spec(cls, spec) -> "CosineSchedule":
        s = spec.schedule
        total = s.total if s.total is not None else s.offset + spec.steps
        return cls(s.lr, s.min_lr, s.warmup_steps, total, s.offset)

    def __call__(self, step: int) -> float:
        """LR of the optimizer update that produces stage step `step` (1-based: the first update is step 1)."""
        position = self.offset + step - 1
        if position < self.warmup_steps:
            return self.lr * (position + 1) / self.warmup_steps
        decay_steps = max(self.total_steps - self.warmup_steps - 1, 1)  # the last update runs at min_lr
        progress = min((position - self.warmup_steps) / decay_steps, 1.0)
        return self.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (self.lr - self.min_lr)
