"""τ through a run: the recipe's `model.scale_mode` as one policy per stage (tfctl/recipe/tau.py), and growth
leaving each grown model with the τ its stage's policy says."""

import pytest
import torch

from tfctl.growth import grow
from tfctl.model import build_model
from tfctl.model.config import TokenformerConfig
from tfctl.recipe.plan import plan_stages, resolve_stage_configs
from tfctl.recipe.schema import Recipe
from tfctl.recipe.tau import GROWN_TAU, TauPolicy

SMALL = TokenformerConfig(
    vocab_size=64, seq_len=16, n_layers=2, d_model=32, n_heads=4, qkv_tokens=8, proj_tokens=8, ffn_tokens=32
)


def recipe(scale_mode: str, first: dict | None = None, **model) -> Recipe:
    return Recipe.model_validate(
        {
            "name": "t",
            "data": {"tokenizer": "bpe:512"},
            "model": {"d_model": 32, "n_layers": 2, "n_heads": 4, "scale_mode": scale_mode, **model},
            "stages": [
                {"name": "s1", "param_tokens": 8, "steps": 10, **(first or {})},
                {"name": "s2", "param_tokens": 16, "steps": 10, "init": "preserve"},
                {"name": "s3", "param_tokens": 24, "steps": 20, "init": "paper"},
            ],
        }
    )


@pytest.mark.parametrize(
    "scale_mode,policies",
    [
        ("sqrt_n", [TauPolicy("sqrt_n"), TauPolicy("fixed"), TauPolicy("sqrt_n")]),
        ("fixed", [TauPolicy("fixed"), TauPolicy("fixed"), TauPolicy("sqrt_n")]),
        ("anneal", [TauPolicy("sqrt_n"), TauPolicy("anneal", 1), TauPolicy("anneal", 2)]),
    ],
)
def test_each_stage_gets_one_policy_and_a_fresh_model_is_built_with_it(scale_mode, policies):
    plans = plan_stages(recipe(scale_mode), vocab_size=512)
    assert [p.tau for p in plans] == policies  # grown stages: their growth's τ, or the anneal (10 %)
    assert plans[0].config.scale_mode == policies[0].scale_mode


def test_a_stage_started_from_a_model_directory_holds_its_grown_tau_and_never_anneals():
    for scale_mode in ("sqrt_n", "anneal"):
        plans = plan_stages(recipe(scale_mode, {"from": "somewhere", "init": "preserve"}), vocab_size=512)
        assert plans[0].tau == TauPolicy("fixed")
    first, *_ = resolve_stage_configs(recipe("fixed", {"from": "somewhere"}), vocab_size=512)
    assert first.scale_mode == "fixed"  # the growth target's τ; growth sets the grown model's own


@pytest.mark.parametrize("init", sorted(GROWN_TAU))
@pytest.mark.parametrize("scale_mode", ["sqrt_n", "fixed"])
def test_growth_leaves_the_tau_its_stage_policy_says(init, scale_mode):
    """GROWN_TAU mirrors tfctl.growth.tokens.grown_scales: the stage spec refuses a model config that
    contradicts its policy, so this is what keeps `tfctl train` from refusing its own specs."""
    source = TokenformerConfig(**{**SMALL.__dict__, "scale_mode": scale_mode})
    target = TokenformerConfig(**{**SMALL.__dict__, "qkv_tokens": 24, "proj_tokens": 24, "ffn_tokens": 96})
    torch.manual_seed(0)
    grown, _ = grow(source, build_model(source).state_dict(), target, init=init)
    assert grown.scale_mode == GROWN_TAU[init]


@pytest.mark.parametrize(
    "kind,steps,message",
    [("cosine", 0, "tau.kind must be one of"), ("anneal", 0, "tau.steps must be > 0"), ("fixed", 3, "and 0")],
)
def test_a_wrong_policy_is_refused(kind, steps, message):
    with pytest.raises(ValueError, match=message):
        TauPolicy(kind, steps)


def test_a_policy_contradicting_its_model_config_is_refused():
    TauPolicy("anneal", 4).check({"family": "tokenformer", "scale_mode": "fixed"})  # from whichever τ
    TauPolicy("fixed").check({"family": "transformer"})  # no τ
    with pytest.raises(ValueError, match="tau.kind sqrt_n contradicts model.scale_mode fixed"):
        TauPolicy("sqrt_n").check({"family": "tokenformer", "scale_mode": "fixed"})
