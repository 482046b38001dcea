"""The model's fast paths: the same math as the plain code beside each module, in fewer passes over memory.

Each op is written plainly where it is used (Θ in pattention.py, the rotation in layers.py, the head + loss
in loss.py, one projection at a time in the blocks); these are its swaps, on by default, all behind one
switch: `fast_paths(False)` runs the plain code (tests/model/test_fast_paths.py: outputs and gradients agree).

- `L2NormGelu`: Θ = GeLU(A·τ/‖A‖₂) with a hand-written backward (4 passes over the scores instead of ~8).
- `Rotate`: rotary as one copy plus in-place updates of the rotated dims, instead of split/mul/cat.
- `LinearCrossEntropy`: the output head and its cross-entropy chunk by chunk in one reused buffer, instead of
  three more (tokens × vocab) tensors per step.
- One score matmul for Q/K/V (`pattention.pattention_same_input`), Q/K/V weights stacked in the Transformer.
"""

from contextlib import contextmanager

import torch
import torch.nn.functional as F

ENABLED = True  # read at every call: the one switch

# rows per chunk × vocab of LinearCrossEntropy: 8 MB of fp32 probabilities, reused for every chunk
CHUNK_ELEMENTS = 2**21


@contextmanager
def fast_paths(enabled: bool):
    """Run the model's fast paths (True, the default) or its plain code (False) inside the block."""
    global ENABLED
    before, ENABLED = ENABLED, enabled
    try:
        yield
    finally:
        ENABLED = before


class L2NormGelu(torch.autograd.Function):
    """GeLU(A · τ / ‖A‖₂) over the last dim, with a hand-written backward. (..., n) → (..., n).

    Autograd's version of the three-op chain saves A, A², the scaled scores and takes ~8 passes over the
    score tensor backward. This one saves only the scaled scores S = A·c (c = τ/‖A‖₂ per row) and takes
    4 passes backward (GeLU', one dot product per row, one fused update, the scale). Where ‖A‖₂ is not
    clamped, ‖S‖₂ = τ, so with G = dL/dS = g ⊙ GeLU'(S):

        dL/dA = c · (G - A · (G·A) / ‖A‖₂²) = c · (G - S · (G·S) / τ²)

    (the second term is zero where ‖A‖₂² is clamped at eps: c is then a constant).
    """

    @staticmethod
    def forward(ctx, scores: torch.Tensor, tau: float, eps: float) -> torch.Tensor:
        squared_norm = torch.linalg.vector_norm(scores, dim=-1, keepdim=True).square_()
        scale = squared_norm.clamp_min(eps).rsqrt_().mul_(tau)
        scaled = scores * scale
        ctx.save_for_backward(scaled, scale, squared_norm >= eps)
        ctx.tau = tau
        return F.gelu(scaled)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        scaled, scale, unclamped = ctx.saved_tensors
        grad_scaled = torch.ops.aten.gelu_backward(grad, scaled)
        row_dot = torch.linalg.vecdot(grad_scaled, scaled).unsqueeze(-1).div_(ctx.tau**2).mul_(unclamped)
        return grad_scaled.addcmul_(scaled, row_dot, value=-1).mul_(scale), None, None


def _rotate_(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Turns the first 2·half dims of x in place by the angles (cos, sin of shape (seq, half)); returns x."""
    half = cos.shape[-1]
    x1, x2 = x[..., :half], x[..., half : 2 * half]
    x1_before = x1.clone()
    x1.mul_(cos).addcmul_(x2, sin, value=-1)
    x2.mul_(cos).addcmul_(x1_before, sin)
    return x


class Rotate(torch.autograd.Function):
    """The rotation as one copy plus in-place updates of the rotated dims (a quarter of them at rotary_pct
    0.25); backward turns the gradient back by the same angles. Autograd's split/mul/cat chain took a
    full-size concatenation forward and a zero-filled full-size gradient backward per call.
    (batch, heads, seq, head_dim) → same shape."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(cos, sin)
        return _rotate_(x.clone(), cos, sin)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        cos, sin = ctx.saved_tensors
        return _rotate_(grad.clone(), cos, -sin), None, None


class LinearCrossEntropy(torch.autograd.Function):
    """(h (N, d), W (V, d), targets (N,)) → (logits (N, V), mean cross-entropy).

    `F.cross_entropy` on the logits makes three more (tokens × vocab) tensors per training step: the
    log-probabilities, a zero-filled one-hot gradient and the gradient of the logits, each read and written in
    full, each a fresh allocation whose pages the kernel zero-fills on a CPU (33 MB, ~8k page faults each, at
    1024 tokens × 8192 vocab). This takes the softmax of a chunk of rows into one reused buffer, reads the loss
    off it and turns it into that chunk's gradients of h and W at once (the loss is a scalar, so backward only
    scales them), like Liger's fused linear cross-entropy. Only the logits, which the model returns, are full
    size.

    Per row, with p = softmax(logits), m its largest logit: loss = m - log(max p) - logit[target]
    (max p = 1/Σexp(logit - m) ≥ 1/V never underflows, unlike p[target]), and
    dloss/dlogits = (p - onehot(target)) / N, so dh = that · W and dW = thatᵀ · h.
    """

    @staticmethod
    def forward(ctx, hidden, weight, targets, needs_grad: bool):
        logits = hidden @ weight.t()
        rows, vocab = logits.shape
        chunk = max(1, min(rows, CHUNK_ELEMENTS // vocab))
        losses = torch.empty(rows, dtype=logits.dtype, device=logits.device)
        probs_buffer = torch.empty(chunk, vocab, dtype=logits.dtype, device=logits.device)
        chunk_rows = torch.arange(chunk, device=logits.device)
        if needs_grad:
            grad_hidden, grad_weight = torch.empty_like(hidden), torch.zeros_like(weight)
        for start in range(0, rows, chunk):
            stop = min(rows, start + chunk)
            scores, target, index = logits[start:stop], targets[start:stop], chunk_rows[: stop - start]
            probs = torch.ops.aten._softmax.out(scores, -1, False, out=probs_buffer[: stop - start])
            largest = scores.amax(-1)
            losses[start:stop] = largest - probs.amax(-1).log_() - scores[index, target]
            if needs_grad:
                probs[index, target] -= 1
                torch.mm(probs, weight, out=grad_hidden[start:stop])
                torch.addmm(grad_weight, probs.t(), hidden[start:stop], out=grad_weight)  # counted as addmm
        if needs_grad:
            ctx.save_for_backward(hidden, weight, grad_hidden.div_(rows), grad_weight.div_(rows))
        ctx.set_materialize_grads(False)
        return logits, losses.mean()

    @staticmethod
    def backward(ctx, grad_logits, grad_loss):
        hidden, weight, grad_hidden, grad_weight = ctx.saved_tensors
        grad_hidden = grad_hidden * grad_loss if grad_loss is not None else torch.zeros_like(hidden)
        grad_weight = grad_weight * grad_loss if grad_loss is not None else torch.zeros_like(weight)
        if grad_logits is not None:  # the logits were used too: their gradient adds the usual two matmuls
            grad_hidden = torch.addmm(grad_hidden, grad_logits, weight)
            grad_weight = torch.addmm(grad_weight, grad_logits.t(), hidden)
        return grad_hidden, grad_weight, None, None
