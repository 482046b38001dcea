"""τ anneal (a stage's τ policy `anneal`, from `model.scale_mode: anneal`; tfctl/recipe/tau.py): a grown stage
starts as the model it grew from and ends as the paper's architecture. The other policies hold the τ of the
stage's model config, which the model applies itself.

`preserve` growth holds τ at its pre-growth value, so at the growth step the grown model computes exactly
what the old one did. With the anneal, τ then moves linearly to sqrt(n) (the paper's τ for the grown token
count) over `model.anneal` steps (default 10 % of the stage, independent of the LR warmup) and stays there; the stage's export is then a plain `sqrt_n` model.
τ is a pure function of the optimizer step, so a resumed stage sets exactly the τ an uninterrupted one would.
"""

import dataclasses
import math

from tfctl.model.pattention import Pattention


def annealed_tau(held: float, target: float, step: int, steps: int) -> float:
    """τ for optimizer step `step` (the growth step is 0): `held` → `target` linearly over `steps` steps."""
    if step >= steps:
        return target
    return held + (target - held) * step / steps


class TauAnneal:
    """Sets τ of every Pattention layer of `model` for a step; built from the stage's initial (held) model."""

    def __init__(self, model, steps: int):
        self.steps = max(1, steps)
        self.layers = [
            (layer, layer.tau, math.sqrt(layer.num_tokens))
            for layer in model.modules()
            if isinstance(layer, Pattention)
        ]

    @classmethod
    def for_stage(cls, model, tau) -> "TauAnneal | None":
        """The anneal of a stage whose τ policy (`spec.tau`) is `anneal`; None for the others."""
        return cls(model, tau.steps) if tau.kind == "anneal" else None

    def set(self, step: int) -> None:
        for layer, held, target in self.layers:
            layer.scale = None if step >= self.steps else annealed_tau(held, target, step, self.steps)

    def done(self, step: int) -> bool:
        return step >= self.steps

    @staticmethod
    def final_config(config):
        """The model config once τ reached sqrt(n): what the stage exports."""
        return dataclasses.replace(
            config, scale_mode="sqrt_n", qkv_scale=None, proj_scale=None, ffn_scale=None
        )
