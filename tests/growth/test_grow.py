import dataclasses
import math

import pytest
import torch

from tests.growth.conftest import batch
from tfctl.growth import PRESERVE_TOLERANCE, grow, layer_sources, target_config, verify_growth
from tfctl.growth.verify import model_from_state

MORE_TOKENS = {"qkv_tokens": 40, "proj_tokens": 24, "ffn_tokens": 160}
GROWTHS = {
    "tokens": MORE_TOKENS,
    "depth": {"n_layers": 4},
    "tokens+depth": {**MORE_TOKENS, "n_layers": 5},
}


@pytest.mark.parametrize("placement", ["append", "interleave"])
@pytest.mark.parametrize("growth", GROWTHS)
def test_preserve_growth_keeps_the_logits(trained, growth, placement):
    config, state, _ = trained
    target = dataclasses.replace(config, **GROWTHS[growth])
    new_config, new_state = grow(config, state, target, init="preserve", placement=placement)
    report = verify_growth(config, state, new_config, new_state)
    assert report.max_abs_logit_diff <= PRESERVE_TOLERANCE
    assert report.loss_after == pytest.approx(report.loss_before, abs=1e-5)
    assert report.params_after == sum(t.numel() for t in new_state.values()) > report.params_before


def test_preserve_keeps_old_rows_and_holds_tau(trained):
    config, state, _ = trained
    new_config, new_state = grow(config, state, dataclasses.replace(config, **MORE_TOKENS), init="preserve")
    assert new_config.scale_mode == "fixed"
    assert new_config.qkv_scale == math.sqrt(16) and new_config.ffn_scale == math.sqrt(64)
    old, new = state["blocks.1.ffn.key_tokens"], new_state["blocks.1.ffn.key_tokens"]
    assert torch.equal(new[:64], old) and new.shape == (160, 32)
    assert torch.count_nonzero(new[64:]) == 0  # new keys zero...
    assert torch.count_nonzero(new_state["blocks.1.ffn.value_tokens"][64:]) > 0  # ...new values not
    assert new_state["embedding.weight"].data_ptr() != state["embedding.weight"].data_ptr()


def test_preserve_is_exact_for_gelu_l2_norm_and_refuses_softmax(trained):
    config, state, _ = trained
    for norm in ("gelu_l2_norm", "softmax"):
        source = dataclasses.replace(config, norm=norm)
        target = dataclasses.replace(source, **MORE_TOKENS)
        if norm == "softmax":
            with pytest.raises(ValueError, match="exact only"):
                grow(source, state, target, init="preserve")
            continue
        new_config, new_state = grow(source, state, target, init="preserve")
        assert verify_growth(source, state, new_config, new_state).max_abs_logit_diff <= PRESERVE_TOLERANCE


def test_new_tokens_and_blocks_train_from_the_first_step(trained):
    config, state, _ = trained
    target = dataclasses.replace(config, **MORE_TOKENS, n_layers=3)
    new_config, new_state = grow(config, state, target, init="preserve")
    model = model_from_state(new_config, new_state).train()
    for p in model.parameters():
        p.requires_grad_(True)
    tokens = batch(torch.Generator().manual_seed(1))
    _, loss = model(tokens[:, :-1], tokens[:, 1:])
    loss.backward()
    for name, layer in model.blocks[:2].named_modules():  # the grown old blocks: every new key learns
        if hasattr(layer, "key_tokens"):
            old = getattr(
                config,
                f"{'ffn' if name.endswith('ffn') else 'proj' if name.endswith('output') else 'qkv'}_tokens",
            )
            grad = layer.key_tokens.grad[old:]
            assert (grad.abs().sum(-1) > 0).all(), name
    new_block = model.blocks[2]  # the new identity block: its zeroed value tokens learn first
    assert new_block.ffn.value_tokens.grad.abs().sum() > 0
    assert new_block.attention.output.value_tokens.grad.abs().sum() > 0


def test_paper_growth_is_the_default_and_not_function_preserving(trained):
    """The default growth is the paper's: random new key tokens, τ = sqrt(n) of the grown size."""
    config, state, _ = trained
    new_config, new_state = grow(config, state, dataclasses.replace(config, **MORE_TOKENS))
    assert new_config.scale_mode == "sqrt_n" and new_config.qkv_scale is None
    assert model_from_state(new_config, new_state).blocks[0].ffn.tau == math.sqrt(160)
    assert torch.count_nonzero(new_state["blocks.0.attention.query.key_tokens"][16:]) > 0
    report = verify_growth(config, state, new_config, new_state)
    assert report.max_abs_logit_diff > 1e-2  # the honest jump
    assert report.loss_after != report.loss_before


def test_the_default_growth_is_the_same_for_a_recipe_a_command_and_the_library():
    import inspect

    from tfctl.growth import DEFAULT_POLICY, grow_model_dir
    from tfctl.recipe.schema import StageSection

    assert StageSection.model_fields["init"].default == DEFAULT_POLICY == "paper"
    for function in (grow, grow_model_dir):
        assert inspect.signature(function).parameters["init"].default == DEFAULT_POLICY


def test_growth_is_deterministic_and_leaves_the_input_alone(trained):
    config, state, _ = trained
    before = {k: v.clone() for k, v in state.items()}
    target = dataclasses.replace(config, **MORE_TOKENS, n_layers=3)
    _, a = grow(config, state, target, init="paper", seed=3)
    _, b = grow(config, state, target, init="paper", seed=3)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(state[k], before[k]) for k in state)


def test_layer_sources():
    assert layer_sources(2, 4) == [0, 1, None, None]
    assert layer_sources(2, 4, "interleave") == [0, None, 1, None]
    assert layer_sources(12, 16, "interleave").count(None) == 4
    assert [s for s in layer_sources(12, 16, "interleave") if s is not None] == list(range(12))


def test_growth_refuses_to_shrink_or_change_the_backbone(trained):
    config, state, _ = trained
    with pytest.raises(ValueError, match="cannot shrink: qkv_tokens 16 → 8"):
        grow(config, state, dataclasses.replace(config, qkv_tokens=8))
    with pytest.raises(ValueError, match="backbone.*d_model 32 → 64"):
        grow(config, state, dataclasses.replace(config, d_model=64))
    with pytest.raises(ValueError, match="do not match"):
        grow(
            config, {**state, "blocks.0.ffn.key_tokens": torch.zeros(3, 32)}, target_config(config, "qkv=20")
        )
