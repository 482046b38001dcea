"""Gradient clipping of a one-rank fp32 ZeRO-0 stage, done by the worker instead of DeepSpeed (issue 28).

The same arithmetic as `deepspeed.runtime.utils.clip_grad_norm_` — the norm is the square root of the sum of
the squared per-tensor norms, every gradient is multiplied by min(1, max_norm / (norm + 1e-6)) — so the weights
are the same bit for bit, without DeepSpeed's all-reduce of the norm over a group of one rank (a few ms a
step on a 2-core CPU), and the per-tensor norms are computed once for the clipping and the logged grad norm.
Any other stage (several ranks, ZeRO, bf16/fp16) clips in DeepSpeed as before.
"""

import torch


def clips_alone(train, world_size: int) -> bool:
    """Whether the worker clips (the DeepSpeed config then has no clipping): `train` is the spec's section."""
    return world_size == 1 and train.zero_stage == 0 and train.precision == "fp32" and train.grad_clip > 0


def global_grad_norm(parameters, max_norm: float | None = None) -> float:
    """The global L2 norm of the gradients (as the records have always logged it); with `max_norm`, the
    gradients are clipped first as DeepSpeed clips them (the norm returned is the one before clipping)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    norms = torch.stack(torch._foreach_norm(grads))
    if max_norm:
        total = norms.pow(2.0).sum().float().pow(0.5)
        limit = torch.tensor([float(max_norm)], device=total.device)
        coefficient = torch.min(torch.tensor([1.0], device=total.device), limit / (total + 1e-6))
        for grad in grads:
            grad.mul_(coefficient)
    return torch.linalg.vector_norm(norms).item()
