import dataclasses

import pytest

from tfctl.growth import target_config
from tfctl.model import TransformerConfig
from tfctl.model.presets import preset
from tfctl.model.sizes import count_params


def test_size_keeps_the_token_ratios():
    source = preset("incremental-124m")
    target = target_config(source, "354m")
    assert target.qkv_tokens == target.proj_tokens and target.ffn_tokens == 4 * target.qkv_tokens
    assert abs(count_params(target) - 354e6) < 0.001 * 354e6
    odd = dataclasses.replace(source, qkv_tokens=100, proj_tokens=50, ffn_tokens=300)
    grown = target_config(odd, "200m")
    assert grown.proj_tokens / grown.qkv_tokens == pytest.approx(0.5, abs=1e-3)
    assert grown.ffn_tokens / grown.qkv_tokens == pytest.approx(3, abs=1e-3)


def test_preset_explicit_tokens_and_layers():
    source = preset("incremental-124m")
    target = target_config(source, "incremental-1.4b")
    assert (target.qkv_tokens, target.ffn_tokens, target.n_layers) == (9233, 4 * 9233, 12)
    explicit = target_config(source, "qkv=1000,ffn=5000", layers=14)
    assert (explicit.qkv_tokens, explicit.proj_tokens, explicit.ffn_tokens, explicit.n_layers) == (
        1000,
        576,
        5000,
        14,
    )
    deeper = target_config(source, "354m", layers=16)
    assert deeper.n_layers == 16 and deeper.qkv_tokens >= 576


def test_refusals_name_the_reason():
    source = preset("incremental-354m")
    with pytest.raises(ValueError, match="growth cannot shrink"):
        target_config(source, "124m")
    with pytest.raises(ValueError, match="growth cannot shrink"):
        target_config(source, "incremental-124m")
    with pytest.raises(ValueError, match="backbone"):
        target_config(source, "pile-450m")
    with pytest.raises(ValueError, match="not a size"):
        target_config(source, "huge")
    with pytest.raises(ValueError, match="baseline Transformer"):
        target_config(TransformerConfig(), "1.4b")
