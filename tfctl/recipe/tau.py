"""τ, the Pattention temperature, through a run: the recipe's `model.scale_mode` becomes one policy per
stage here, and nowhere else.

    recipe  model.scale_mode sqrt_n | fixed | anneal, model.anneal   what the user asks for (schema.py)
    plan    StagePlan.tau: a TauPolicy                                 decided here: stage_tau, fresh_tau
    spec    StageSpec.tau: the same TauPolicy                          carried to the ranks (tfctl/stage/spec.py)
    worker  applies it: `anneal` moves τ every step                    tfctl/worker/tau_anneal.py
    model   TokenformerConfig.scale_mode sqrt_n | fixed, τ per layer   what a model computes with (config.json)

A stage's model starts with the τ its config holds: the plan's for a model built fresh (`fresh_tau`), the one
growth gave it for a grown model (tfctl/growth/tokens.py: `preserve` holds τ, `paper` sets sqrt(n)). Within a
stage n is constant, so τ stays where it starts unless the stage anneals it.
"""

from dataclasses import dataclass

from tfctl.recipe.schema import ModelSection, Recipe

TAU_KINDS = ("sqrt_n", "fixed", "anneal")

# The τ a growth init leaves a grown model with (tfctl.growth.tokens.grown_scales, which sets it; a stage's
# spec refuses a policy its model config contradicts, so the two cannot drift apart unnoticed).
GROWN_TAU = {"preserve": "fixed", "paper": "sqrt_n"}


@dataclass(frozen=True)
class TauPolicy:
    """What τ does during one stage.

    sqrt_n  τ = sqrt(n) of each layer (the paper): the model config's `scale_mode: sqrt_n`
    fixed   τ held at the values the model config stores (`scale_mode: fixed`)
    anneal  from the τ growth gave the model to sqrt(n) over `steps` optimizer steps, then sqrt(n): the stage
            ends (and exports) as the paper's architecture
    """

    kind: str = "sqrt_n"
    steps: int = 0  # anneal: the steps τ takes to reach sqrt(n); 0 for the other kinds

    def __post_init__(self):
        if self.kind not in TAU_KINDS:
            raise ValueError(f"tau.kind must be one of {', '.join(TAU_KINDS)}, got {self.kind!r}")
        if (self.kind == "anneal") != (self.steps > 0):
            raise ValueError(f"tau.steps must be > 0 for an anneal and 0 otherwise, got {self.steps}")

    @property
    def scale_mode(self) -> str:
        """The model config's `scale_mode` of a model built fresh under this policy."""
        return "fixed" if self.kind == "fixed" else "sqrt_n"

    @classmethod
    def held_by(cls, model: dict) -> "TauPolicy":
        """The policy of a stage that keeps its model config's τ (a spec that names none: older or by hand)."""
        return cls("fixed" if model.get("scale_mode") == "fixed" else "sqrt_n")

    def check(self, model: dict) -> None:
        """ValueError where a Tokenformer config of the stage holds another τ than the policy says."""
        if model.get("family", "tokenformer") != "tokenformer" or self.kind == "anneal":
            return  # a Transformer has no τ; an anneal starts from whichever τ growth gave
        if model.get("scale_mode", "sqrt_n") != self.scale_mode:
            raise ValueError(f"tau.kind {self.kind} contradicts model.scale_mode {model.get('scale_mode')}")


def anneal_steps(anneal: float, steps: int) -> int:
    """`model.anneal` in steps: a fraction of the stage if < 1 (at least one step), else steps (at most the
    stage's)."""
    return max(1, int(round(anneal * steps))) if anneal < 1 else min(int(anneal), steps)


def fresh_tau(model: ModelSection) -> TauPolicy:
    """τ of a Tokenformer built fresh (the first stage, a baseline from scratch): `anneal` acts after a growth
    only, so it starts at sqrt(n)."""
    return TauPolicy("fixed" if model.scale_mode == "fixed" else "sqrt_n")


def stage_tau(recipe: Recipe, index: int, steps: int) -> TauPolicy:
    """τ of the recipe's stage `index` (of `steps` steps)."""
    stage = recipe.stages[index]
    if index == 0 and stage.from_ is None:
        return fresh_tau(recipe.model)
    if index > 0 and recipe.model.scale_mode == "anneal":  # a `from:` start is not annealed
        return TauPolicy("anneal", anneal_steps(recipe.model.anneal, steps))
    return TauPolicy(GROWN_TAU[stage.init])
