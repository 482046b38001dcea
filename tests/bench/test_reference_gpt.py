"""The reference GPT of the training-step benchmark: its size, causality, tied head, and the matched sizes."""

import math

import torch

from tfctl.bench.reference_gpt import ReferenceGPT, ReferenceGPTConfig
from tfctl.bench.suite import BenchConfig
from tfctl.bench.training import families


def test_size_tied_head_and_initial_loss():
    config = ReferenceGPTConfig(vocab_size=64, seq_len=16, n_layers=2, n_heads=2, d_model=32)
    model = ReferenceGPT(config)
    d = config.d_model
    assert model.get_num_params(non_embedding=True) == 2 * (12 * d * d + 2 * d) + d  # blocks + LN weights
    assert model.get_num_params() == model.get_num_params(non_embedding=True) + (64 + 16) * d
    idx = torch.randint(0, 64, (2, 16))
    logits, loss = model(idx, torch.randint(0, 64, (2, 16)))
    assert logits.shape == (2, 16, 64)
    assert abs(loss.item() - math.log(64)) < 0.1


def test_causal():
    torch.manual_seed(0)
    model = ReferenceGPT(ReferenceGPTConfig(vocab_size=64, seq_len=16, n_layers=2, n_heads=2, d_model=32))
    idx = torch.randint(0, 64, (1, 16))
    changed = idx.clone()
    changed[0, 10:] = (changed[0, 10:] + 1) % 64
    torch.testing.assert_close(model(idx)[0][:, :10], model(changed)[0][:, :10])


def test_the_issue_shape_is_matched_within_half_a_percent():
    found = families(BenchConfig())  # d 384, 6 layers, 6 heads, seq 256, vocab 8192
    reference = found["reference-gpt"].non_embedding_params
    assert found["tokenformer"].config.qkv_tokens == 288 and found["tokenformer"].config.ffn_tokens == 1152
    assert found["transformer"].config.ffn_hidden == 1536
    for name in ("tokenformer", "transformer"):
        assert abs(found[name].non_embedding_params / reference - 1) < 0.005
