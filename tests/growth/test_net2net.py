"""Net2Net widening of the baseline Transformer: exactly the same function, and copies that can diverge."""

import torch

from tfctl.growth.net2net import net2wider, widen
from tfctl.growth.verify import model_from_state
from tfctl.model import TransformerConfig, build_model

CONFIG = TransformerConfig(
    vocab_size=96, seq_len=24, n_layers=2, d_model=32, n_heads=4, ffn_hidden=40, rotary_pct=0.5
)


def trained_state(seed: int = 0) -> dict:
    """Weights off their init (a few SGD steps on random tokens), so the test is not about an easy init."""
    torch.manual_seed(seed)
    model = build_model(CONFIG)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    tokens = torch.randint(0, CONFIG.vocab_size, (4, CONFIG.seq_len + 1))
    for _ in range(5):
        _, loss = model(tokens[:, :-1], tokens[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def logits(config, state, tokens):
    with torch.no_grad():
        return model_from_state(config, state)(tokens)[0]


def test_widening_preserves_the_function_exactly():
    state = trained_state()
    tokens = torch.randint(0, CONFIG.vocab_size, (3, CONFIG.seq_len))
    new_config, new_state = widen(CONFIG, state, ffn_hidden=101, seed=3)
    assert new_config.ffn_hidden == 101
    assert new_state["blocks.0.mlp.up.weight"].shape == (101, 32)
    assert new_state["blocks.1.mlp.down.weight"].shape == (32, 101)
    diff = (logits(new_config, new_state, tokens) - logits(CONFIG, state, tokens)).abs().max().item()
    assert diff <= 1e-5


def test_widening_and_deepening_preserves_the_function():
    state = trained_state(1)
    tokens = torch.randint(0, CONFIG.vocab_size, (2, CONFIG.seq_len))
    new_config, new_state = widen(CONFIG, state, ffn_hidden=64, layers=3, seed=0)
    assert new_config.n_layers == 3
    assert new_state["blocks.2.mlp.down.weight"].abs().max() == 0  # the new block is the identity
    assert new_state["blocks.2.mlp.up.weight"].abs().max() > 0  # ... but can learn
    diff = (logits(new_config, new_state, tokens) - logits(CONFIG, state, tokens)).abs().max().item()
    assert diff <= 1e-5


def test_the_split_sums_to_the_original_and_breaks_symmetry():
    generator = torch.Generator().manual_seed(0)
    up, down = torch.randn(5, 8), torch.randn(8, 5)
    new_up, new_down = net2wider(up, down, 12, generator)
    # every new unit copies some old unit's row; the copies' columns sum back to the old column
    mapping = [next(k for k in range(5) if torch.equal(new_up[j], up[k])) for j in range(12)]
    assert mapping[:5] == list(range(5))
    summed = torch.zeros_like(down).index_add_(1, torch.tensor(mapping), new_down)
    torch.testing.assert_close(summed, down, atol=1e-6, rtol=0)
    copied = [j for j in range(5, 12)]
    k = mapping[copied[0]]
    ratio_a, ratio_b = new_down[:, k] / down[:, k], new_down[:, copied[0]] / down[:, k]
    assert not torch.allclose(ratio_a, ratio_a[0].expand_as(ratio_a))  # uneven per element
    assert not torch.allclose(ratio_a, ratio_b)


def test_no_narrowing():
    import pytest

    with pytest.raises(ValueError, match="narrow"):
        net2wider(torch.randn(5, 8), torch.randn(8, 5), 4)
