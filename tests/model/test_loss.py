"""The fused output head + cross-entropy against `F.linear` + `F.cross_entropy`: logits, loss and gradients."""

import pytest
import torch
import torch.nn.functional as F

from tfctl.model import fast
from tfctl.model.loss import linear_cross_entropy


def plain(hidden, weight, targets):
    logits = F.linear(hidden, weight)
    return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))


def inputs(scale=1.0, vocab=50):
    torch.manual_seed(0)
    hidden = (torch.randn(3, 7, 16) * scale).requires_grad_()
    weight = torch.randn(vocab, 16, requires_grad=True)
    return hidden, weight, torch.randint(0, vocab, (3, 7))


@pytest.mark.parametrize("chunk_elements", [2**21, 200])  # one chunk; 4 rows a chunk, the last one short
# scale 30: logit gaps of hundreds, where p[target] underflows
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_logits_loss_and_gradients_equal_the_plain_ops(monkeypatch, chunk_elements, scale):
    monkeypatch.setattr(fast, "CHUNK_ELEMENTS", chunk_elements)
    hidden, weight, targets = inputs(scale)
    logits, loss = linear_cross_entropy(hidden, weight, targets)
    grads = torch.autograd.grad(loss, (hidden, weight))
    want_logits, want_loss = plain(hidden, weight, targets)
    want_grads = torch.autograd.grad(want_loss, (hidden, weight))
    assert torch.isfinite(loss)
    torch.testing.assert_close(logits, want_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loss, want_loss, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, want_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_a_loss_that_also_uses_the_logits_gets_both_gradients():
    hidden, weight, targets = inputs()
    logits, loss = linear_cross_entropy(hidden, weight, targets)
    grads = torch.autograd.grad(2 * loss + logits.square().mean(), (hidden, weight))
    want_logits, want_loss = plain(hidden, weight, targets)
    want_grads = torch.autograd.grad(2 * want_loss + want_logits.square().mean(), (hidden, weight))
    for got, want in zip(grads, want_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_without_grad_and_in_bf16_the_same_numbers():
    hidden, weight, targets = inputs()
    want_logits, want_loss = plain(hidden, weight, targets)
    with torch.no_grad():
        logits, loss = linear_cross_entropy(hidden, weight, targets)
    assert not loss.requires_grad
    torch.testing.assert_close(loss, want_loss.detach(), rtol=1e-5, atol=1e-5)
    logits, loss = linear_cross_entropy(hidden.bfloat16(), weight.bfloat16(), targets)  # the plain path
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    torch.testing.assert_close(loss, want_loss, rtol=0.05, atol=0.05)
