"""τ anneal: exact at the growth step, sqrt(n) after the warmup, the same τ on resume, an exact export."""

import math

import pytest
import torch

from tfctl.growth import grow
from tfctl.model import build_model
from tfctl.model.config import TokenformerConfig
from tfctl.model.pattention import Pattention
from tfctl.recipe.plan import resolve_stage_configs
from tfctl.recipe.schema import Recipe
from tfctl.worker.tau_anneal import TauAnneal, annealed_tau

SMALL = TokenformerConfig(
    vocab_size=64, seq_len=16, n_layers=2, d_model=32, n_heads=4, qkv_tokens=8, proj_tokens=8, ffn_tokens=32
)


def grown_model():
    torch.manual_seed(0)
    small = build_model(SMALL)
    target = TokenformerConfig(**{**SMALL.__dict__, "qkv_tokens": 24, "proj_tokens": 24, "ffn_tokens": 96})
    config, state = grow(SMALL, small.state_dict(), target, init="preserve")
    model = build_model(config)
    model.load_state_dict(state)
    return small, model, config


def test_the_schedule():
    assert annealed_tau(2.0, 4.0, 0, 10) == 2.0
    assert annealed_tau(2.0, 4.0, 5, 10) == pytest.approx(3.0)
    assert annealed_tau(2.0, 4.0, 10, 10) == annealed_tau(2.0, 4.0, 99, 10) == 4.0


def test_exact_at_growth_paper_tau_after_warmup_same_on_resume_exact_export():
    small, model, config = grown_model()
    x = torch.randint(0, 64, (2, 16))
    anneal = TauAnneal(model, steps=10)
    anneal.set(0)
    with torch.no_grad():
        assert torch.allclose(model(x)[0], small(x)[0], atol=1e-5)  # the growth step: exact
    anneal.set(4)
    resumed = build_model(config)  # a resumed worker rebuilds the stage's initial (held) model
    resumed.load_state_dict(model.state_dict())
    TauAnneal(resumed, steps=10).set(4)
    taus = [m.tau for m in model.modules() if isinstance(m, Pattention)]
    assert taus == [m.tau for m in resumed.modules() if isinstance(m, Pattention)]
    anneal.set(10)
    for layer in (m for m in model.modules() if isinstance(m, Pattention)):
        assert layer.scale is None and layer.tau == math.sqrt(layer.num_tokens)
    exported = build_model(TauAnneal.final_config(config))
    exported.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(exported(x)[0], model(x)[0])


def test_anneal_starts_from_the_paper_tau():
    recipe = Recipe.model_validate(
        {
            "name": "a",
            "data": {"tokenizer": "bpe:512"},
            "model": {"d_model": 32, "n_layers": 2, "n_heads": 4, "scale_mode": "anneal"},
            "stages": [
                {"name": "s1", "param_tokens": 8, "steps": 5},
                {"name": "s2", "param_tokens": 24, "steps": 5},
            ],
        }
    )
    first, _ = resolve_stage_configs(recipe, vocab_size=512)
    assert first.scale_mode == "sqrt_n"
