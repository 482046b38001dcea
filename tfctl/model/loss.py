"""The output head and its loss: logits = h·Wᵀ through the tied embedding, and their mean cross-entropy.

The plain code is `F.linear` + `F.cross_entropy`; in fp32 outside autocast the fast path
(`fast.LinearCrossEntropy`) computes both in one chunked pass.
"""

import math

import torch
import torch.nn.functional as F

from tfctl.model import fast


def linear_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (..., V) of `hidden` (..., d) through `weight` (V, d) and their mean cross-entropy against
    `targets` (...)."""
    fp32 = hidden.dtype == weight.dtype == torch.float32
    if fast.ENABLED and fp32 and not torch.is_autocast_enabled(hidden.device.type):
        needs_grad = torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)
        logits, loss = fast.LinearCrossEntropy.apply(
            hidden.reshape(-1, hidden.shape[-1]), weight, targets.reshape(-1), needs_grad
        )
        return logits.view(*hidden.shape[:-1], weight.shape[0]), loss
    logits = F.linear(hidden, weight)  # (..., V)
    loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))  # fp32 scalar
    return logits, loss


def perplexity(loss: float) -> float:
    """exp(mean cross-entropy); inf where exp overflows."""
    return math.exp(loss) if loss < 700 else float("inf")
