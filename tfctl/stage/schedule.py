"""The learning rate: linear warmup, then cosine decay to `min_lr` (nanoGPT's `get_lr`).

One schedule per stage by default (the paper restarts warmup + cosine at every stage: offset 0, total = the
stage's steps). `lr_schedule: continue` runs one schedule over all stages: a stage sits at `offset` inside a
schedule of `total` steps, and its step s reads the schedule at `offset + s`. The orchestrator resolves it
from the recipe (tfctl.recipe.plan) into the stage's spec; the worker calls it once per step.
"""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class CosineSchedule:
    lr: float  # peak, after warmup
    min_lr: float  # at the end of the cosine
    warmup_steps: int
    total: int  # length of the whole schedule (this stage's steps, or all stages' when continued)
    offset: int = 0  # schedule steps done before this stage

    def __call__(self, step: int) -> float:
        """LR of the optimizer update that produces stage step `step` (1-based: the first update is step 1)."""
        position = self.offset + step - 1
        if position < self.warmup_steps:
            return self.lr * (position + 1) / self.warmup_steps
        decay_steps = max(self.total - self.warmup_steps - 1, 1)  # the last update runs at min_lr
        progress = min((position - self.warmup_steps) / decay_steps, 1.0)
        return self.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (self.lr - self.min_lr)
