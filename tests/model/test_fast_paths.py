"""The speed-ups of the model (Θ's hand-written backward, one score matmul for Q/K/V, the Transformer's stacked
QKV weight, rotary without rotate_half) against the plain, op-by-op implementation: outputs and gradients of
every parameter equal within 1e-5."""

import math

import pytest
import torch
import torch.nn.functional as F

from tfctl.model import TokenformerConfig, TransformerConfig, build_model
from tfctl.model.pattention import EPS, L2NormGelu, theta


def plain_theta(scores, tau):
    inverse_norm = scores.pow(2).sum(-1, keepdim=True).clamp_min(EPS).rsqrt()
    return F.gelu(scores * (inverse_norm * tau))


def plain_pattention(layer, x):
    return plain_theta(x @ layer.key_tokens.t(), layer.tau) @ layer.value_tokens


def plain_rotary(x, rot_dim, base=10000.0):
    """x: (batch, heads, seq, head_dim), GPT-NeoX rotate_half form."""
    seq_len = x.shape[-2]
    inv_freq = 1.0 / base ** (torch.arange(0, rot_dim, 2, dtype=torch.float32) / rot_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    rotated, passed = x[..., :rot_dim], x[..., rot_dim:]
    half = rot_dim // 2
    rotate_half = torch.cat((-rotated[..., half:], rotated[..., :half]), dim=-1)
    return torch.cat((rotated * angles.cos() + rotate_half * angles.sin(), passed), dim=-1)


def plain_attention(q, k, v, model):
    batch, seq_len, d = q.shape
    heads = model.config.n_heads
    q, k, v = (t.reshape(batch, seq_len, heads, d // heads).transpose(1, 2) for t in (q, k, v))
    q, k = plain_rotary(q, model.rotary.rot_dim), plain_rotary(k, model.rotary.rot_dim)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return y.transpose(1, 2).reshape(batch, seq_len, d)


def plain_forward(model, idx):
    """The model's forward written out op by op, one projection at a time, on the model's own parameters."""
    x = model.embedding(idx)
    for block in model.blocks:
        h = F.layer_norm(x, (x.shape[-1],))
        if model.config.family == "tokenformer":
            a = block.attention
            q, k, v = (plain_pattention(m, h) for m in (a.query, a.key, a.value))
            x = x + plain_pattention(a.output, plain_attention(q, k, v, model))
            x = x + plain_pattention(block.ffn, F.layer_norm(x, (x.shape[-1],)))
        else:
            a = block.attention
            q, k, v = h @ a.query.weight.t(), h @ a.key.weight.t(), h @ a.value.weight.t()
            x = x + plain_attention(q, k, v, model) @ a.output.weight.t()
            h = F.layer_norm(x, (x.shape[-1],))
            x = x + F.gelu(h @ block.mlp.up.weight.t()) @ block.mlp.down.weight.t()
    return F.linear(model.final_norm(x), model.embedding.weight)


SHAPE = dict(vocab_size=96, seq_len=24, n_layers=2, d_model=48, n_heads=4, rotary_pct=0.5)


@pytest.mark.parametrize(
    "config",
    [
        TokenformerConfig(**SHAPE, qkv_tokens=20, proj_tokens=28, ffn_tokens=80),
        TokenformerConfig(**SHAPE, qkv_tokens=20, proj_tokens=20, ffn_tokens=80, scale_mode="fixed"),
        TransformerConfig(**SHAPE, ffn_hidden=112),
    ],
    ids=["tokenformer", "tokenformer-fixed-tau", "transformer"],
)
def test_model_equals_the_plain_implementation(config):
    """fp32, the training loss: logits, loss and every gradient within 1e-5."""
    torch.manual_seed(0)
    model = build_model(config)
    idx = torch.randint(0, config.vocab_size, (3, config.seq_len))
    targets = torch.randint(0, config.vocab_size, (3, config.seq_len))
    fast, fast_loss = model(idx, targets)
    fast_grads = torch.autograd.grad(fast_loss, list(model.parameters()))
    plain = plain_forward(model, idx)
    plain_loss = F.cross_entropy(plain.view(-1, plain.size(-1)), targets.view(-1))
    plain_grads = torch.autograd.grad(plain_loss, list(model.parameters()))
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast_loss, plain_loss, rtol=1e-5, atol=1e-5)
    for (name, _), got, want in zip(model.named_parameters(), fast_grads, plain_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("scale", [1.0, 1e-7, 0.0])  # ordinary rows, rows whose norm is clamped, zero rows
def test_theta_backward_equals_autograd_of_the_plain_ops(scale):
    torch.manual_seed(0)
    scores = (torch.randn(5, 3, 40, dtype=torch.float64) * scale).requires_grad_()
    grad = torch.randn(5, 3, 40, dtype=torch.float64)
    tau = math.sqrt(40)
    fast = theta(scores, "l2_norm_gelu", tau)
    (fast_grad,) = torch.autograd.grad(fast, scores, grad)
    plain = plain_theta(scores, tau)
    (plain_grad,) = torch.autograd.grad(plain, scores, grad)
    torch.testing.assert_close(fast, plain, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fast_grad, plain_grad, rtol=1e-10, atol=1e-10)


def test_theta_backward_passes_gradcheck():
    torch.manual_seed(0)
    scores = torch.randn(4, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: L2NormGelu.apply(s, 2.5), (scores,))
