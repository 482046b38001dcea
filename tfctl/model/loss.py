"""The output head and its loss in one pass: logits = h·Wᵀ and the mean cross-entropy of the targets.

`F.cross_entropy` on the logits makes three more (tokens × vocab) tensors per training step: the
log-probabilities, a zero-filled one-hot gradient and the gradient of the logits, each read and written in
full, each a fresh allocation whose pages the kernel zero-fills on a CPU (33 MB, ~8k page faults each, at
1024 tokens × 8192 vocab). `LinearCrossEntropy` instead takes the softmax of a chunk of rows into one reused
buffer, reads the loss off it and turns it into that chunk's gradients of h and W at once (the loss is a
scalar, so backward only scales them), like Liger's fused linear cross-entropy. Only the logits, which the
model returns, are full size.
"""

import math

import torch
import torch.nn.functional as F

# rows per chunk × vocab: 8 MB of fp32 probabilities, reused for every chunk
CHUNK_ELEMENTS = 2**21


class LinearCrossEntropy(torch.autograd.Function):
    """(h (N, d), W (V, d), targets (N,)) → (logits (N, V), mean cross-entropy).

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


def linear_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (..., V) of `hidden` (..., d) through `weight` (V, d) and their mean cross-entropy against
    `targets` (...). fp32 outside autocast goes through `LinearCrossEntropy`; anything else is the plain
    `F.linear` + `F.cross_entropy` on fp32 logits."""
    fp32 = hidden.dtype == weight.dtype == torch.float32
    if not fp32 or torch.is_autocast_enabled(hidden.device.type):
        logits = F.linear(hidden, weight)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss
    needs_grad = torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)
    logits, loss = LinearCrossEntropy.apply(
        hidden.reshape(-1, hidden.shape[-1]), weight, targets.reshape(-1), needs_grad
    )
    return logits.view(*hidden.shape[:-1], weight.shape[0]), loss


def perplexity(loss: float) -> float:
    """exp(mean cross-entropy); inf where exp overflows."""
    return math.exp(loss) if loss < 700 else float("inf")
