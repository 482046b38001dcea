"""The model's fast paths (tfctl/model/fast.py: Θ's hand-written backward, one score matmul for Q/K/V, the
Transformer's stacked QKV weight, rotary in place, the chunked head + loss) against the plain code beside them
in the package (`fast_paths(False)`): outputs and gradients of every parameter equal within 1e-5."""

import math

import pytest
import torch

from tfctl.model import TokenformerConfig, TransformerConfig, build_model, fast
from tfctl.model.fast import L2NormGelu, fast_paths
from tfctl.model.layers import rotate
from tfctl.model.pattention import EPS, theta

SHAPE = dict(vocab_size=96, seq_len=24, n_layers=2, d_model=48, n_heads=4, rotary_pct=0.5)


def loss_and_grads(model, idx, targets):
    logits, loss = model(idx, targets)
    return logits, loss, torch.autograd.grad(loss, list(model.parameters()))


@pytest.mark.parametrize(
    "config",
    [
        TokenformerConfig(**SHAPE, qkv_tokens=20, proj_tokens=28, ffn_tokens=80),
        TokenformerConfig(**SHAPE, qkv_tokens=20, proj_tokens=20, ffn_tokens=80, scale_mode="fixed"),
        TransformerConfig(**SHAPE, ffn_hidden=112),
    ],
    ids=["tokenformer", "tokenformer-fixed-tau", "transformer"],
)
def test_fast_paths_equal_the_plain_code(config):
    """fp32, the training loss: logits, loss and every gradient within 1e-5."""
    torch.manual_seed(0)
    model = build_model(config)
    idx = torch.randint(0, config.vocab_size, (3, config.seq_len))
    targets = torch.randint(0, config.vocab_size, (3, config.seq_len))
    assert fast.ENABLED  # the default
    fast_logits, fast_loss, fast_grads = loss_and_grads(model, idx, targets)
    with fast_paths(False):
        plain_logits, plain_loss, plain_grads = loss_and_grads(model, idx, targets)
    assert fast.ENABLED  # restored
    torch.testing.assert_close(fast_logits, plain_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast_loss, plain_loss, rtol=1e-5, atol=1e-5)
    for (name, _), got, want in zip(model.named_parameters(), fast_grads, plain_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5, msg=lambda m, name=name: f"{name}: {m}")


def test_the_switch_selects_the_code_that_runs(monkeypatch):
    """With the fast paths off, none of their autograd Functions is called."""
    calls = []
    for function in (fast.L2NormGelu, fast.Rotate, fast.LinearCrossEntropy):
        original = function.apply
        monkeypatch.setattr(
            function, "apply", lambda *a, f=original, n=function.__name__: calls.append(n) or f(*a)
        )
    model = build_model(TokenformerConfig(**SHAPE, qkv_tokens=20, proj_tokens=28, ffn_tokens=80))
    idx = torch.randint(0, SHAPE["vocab_size"], (2, 8))
    with fast_paths(False):
        model(idx, idx)
    assert calls == []
    model(idx, idx)
    assert {"L2NormGelu", "Rotate", "LinearCrossEntropy"} == set(calls)


def test_rotate_is_gpt_neox_rotary():
    """The plain rotation equals GPT-NeoX's rotate_half form on the first rot_dim dims."""
    torch.manual_seed(0)
    x, rot_dim, seq_len = torch.randn(2, 3, 10, 16), 8, 10
    inv_freq = 1.0 / 10000.0 ** (torch.arange(0, rot_dim, 2, dtype=torch.float32) / rot_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    full = torch.cat((angles, angles), dim=-1)
    rotated, passed = x[..., :rot_dim], x[..., rot_dim:]
    rotate_half = torch.cat((-rotated[..., rot_dim // 2 :], rotated[..., : rot_dim // 2]), dim=-1)
    want = torch.cat((rotated * full.cos() + rotate_half * full.sin(), passed), dim=-1)
    torch.testing.assert_close(rotate(x, angles.cos(), angles.sin()), want)


@pytest.mark.parametrize("scale", [1.0, 1e-7, 0.0])  # ordinary rows, rows whose norm is clamped, zero rows
def test_theta_backward_equals_autograd_of_the_plain_ops(scale):
    torch.manual_seed(0)
    scores = (torch.randn(5, 3, 40, dtype=torch.float64) * scale).requires_grad_()
    grad = torch.randn(5, 3, 40, dtype=torch.float64)
    tau = math.sqrt(40)
    fast_theta = theta(scores, "l2_norm_gelu", tau)
    (fast_grad,) = torch.autograd.grad(fast_theta, scores, grad)
    with fast_paths(False):
        plain = theta(scores, "l2_norm_gelu", tau)
    (plain_grad,) = torch.autograd.grad(plain, scores, grad)
    torch.testing.assert_close(fast_theta, plain, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fast_grad, plain_grad, rtol=1e-10, atol=1e-10)


def test_theta_backward_passes_gradcheck():
    torch.manual_seed(0)
    scores = torch.randn(4, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: L2NormGelu.apply(s, 2.5, EPS), (scores,))
