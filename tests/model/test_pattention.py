import math

import pytest
import torch
import torch.nn.functional as F

from tfctl.model import Pattention
from tfctl.model.pattention import pattention_same_input


def reference_pattention(x, keys, values, norm, n):
    """Eq. 5 written out independently, one input row at a time."""
    out = torch.empty(x.shape[0], values.shape[1], dtype=torch.float64)
    for i, row in enumerate(x.double()):
        a = keys.double() @ row  # (n,)
        if norm == "l2_norm_gelu":
            s = F.gelu(a * math.sqrt(n) / torch.sqrt((a * a).sum()))
        elif norm == "gelu_l2_norm":
            g = F.gelu(a)
            s = g / torch.sqrt((g * g).sum()) * math.sqrt(n)
        else:
            e = torch.exp(a)
            s = e / e.sum() * n
        out[i] = s @ values.double()
    return out


@pytest.mark.parametrize("norm", ["l2_norm_gelu", "gelu_l2_norm", "softmax"])
def test_pattention_matches_equation_5(norm):
    torch.manual_seed(0)
    layer = Pattention(16, 24, num_tokens=40, norm=norm)
    torch.nn.init.normal_(layer.key_tokens, std=0.3)
    torch.nn.init.normal_(layer.value_tokens, std=0.3)
    x = torch.randn(2, 5, 16)
    got = layer(x).reshape(-1, 24)
    want = reference_pattention(
        x.reshape(-1, 16), layer.key_tokens.detach(), layer.value_tokens.detach(), norm, 40
    )
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)


def test_fixed_scale_keeps_tau_when_tokens_change():
    layer = Pattention(8, 8, num_tokens=16, scale=4.0)
    assert layer.tau == 4.0
    assert Pattention(8, 8, num_tokens=16).tau == 4.0
    assert Pattention(8, 8, num_tokens=64).tau == 8.0


@pytest.mark.parametrize("norm", ["l2_norm_gelu", "gelu_l2_norm"])
def test_all_zero_scores_stay_finite(norm):
    layer = Pattention(8, 8, num_tokens=16, norm=norm)
    with torch.no_grad():
        layer.key_tokens.zero_()
    x = torch.randn(3, 8, requires_grad=True)
    y = layer(x)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()
    assert torch.count_nonzero(y) == 0


def test_one_score_matmul_for_qkv_equals_three_layers():
    torch.manual_seed(0)
    layers = [Pattention(16, 24, num_tokens=40, norm=norm) for norm in ("l2_norm_gelu",) * 3]
    x = torch.randn(2, 5, 16, requires_grad=True)
    fused = pattention_same_input(layers, x)
    separate = [layer(x) for layer in layers]
    for a, b in zip(fused, separate, strict=True):
        torch.testing.assert_close(a, b)
    grads = torch.autograd.grad(sum(o.sum() for o in fused), [x, layers[1].key_tokens])
    want = torch.autograd.grad(sum(o.sum() for o in separate), [x, layers[1].key_tokens])
    for a, b in zip(grads, want, strict=True):
        torch.testing.assert_close(a, b)
