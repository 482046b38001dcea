import dataclasses

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from tfctl.model import TokenformerConfig, TransformerConfig, build_model, config_from_dict, config_to_dict
from tfctl.model.flops import training_flops_per_token
from tfctl.model.sizes import count_params

TINY = {
    "tokenformer": TokenformerConfig(
        vocab_size=128,
        seq_len=32,
        n_layers=2,
        d_model=32,
        n_heads=4,
        qkv_tokens=24,
        proj_tokens=24,
        ffn_tokens=96,
        rotary_pct=0.5,
    ),
    "transformer": TransformerConfig(
        vocab_size=128, seq_len=32, n_layers=2, d_model=32, n_heads=4, ffn_hidden=128, rotary_pct=0.5
    ),
}


@pytest.mark.parametrize("family", TINY)
def test_causality(family):
    torch.manual_seed(0)
    model = build_model(TINY[family]).eval()
    idx = torch.randint(0, 128, (2, 20))
    changed = idx.clone()
    changed[:, 12] = (changed[:, 12] + 7) % 128
    a, _ = model(idx)
    b, _ = model(changed)
    torch.testing.assert_close(a[:, :12], b[:, :12], rtol=0, atol=0)
    assert not torch.allclose(a[:, 12:], b[:, 12:])


@pytest.mark.parametrize("family", TINY)
def test_param_count_is_analytic(family):
    config = TINY[family]
    model = build_model(config)
    assert model.get_num_params() == count_params(config) == sum(p.numel() for p in model.parameters())
    assert model.get_num_params(non_embedding=True) == count_params(config, non_embedding=True)


@pytest.mark.parametrize("family", TINY)
def test_analytic_flops_match_flop_counter(family):
    config = dataclasses.replace(TINY[family], d_model=64, vocab_size=256)
    model = build_model(config)
    batch, seq_len = 2, 32
    idx = torch.randint(0, config.vocab_size, (batch, seq_len))
    # the math backend decomposes SDPA into bmm's the counter sees (the fused CPU kernel is not counted)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        _, loss = model(idx, idx)
        loss.backward()
    measured = counter.get_total_flops() / (batch * seq_len)
    analytic = training_flops_per_token(config, seq_len)
    assert abs(analytic - measured) / measured < 0.05, (analytic, measured)


@pytest.mark.parametrize("family", TINY)
def test_tiny_model_overfits_one_batch(family):
    torch.manual_seed(0)
    model = build_model(TINY[family])
    idx = torch.randint(0, 128, (4, 32))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        _, loss = model(idx[:, :-1], idx[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0], losses[::25]


@pytest.mark.parametrize("family", TINY)
def test_config_round_trip(family):
    config = TINY[family]
    assert config_from_dict(config_to_dict(config)) == config
    with pytest.raises(ValueError, match="unknown"):
        config_from_dict({**config_to_dict(config), "bogus": 1})


def test_fixed_scale_config_stores_sqrt_n():
    config = dataclasses.replace(TINY["tokenformer"], scale_mode="fixed")
    assert config.qkv_scale == pytest.approx(24**0.5) and config.ffn_scale == pytest.approx(96**0.5)
    model = build_model(config)
    assert model.blocks[0].ffn.tau == pytest.approx(96**0.5)
