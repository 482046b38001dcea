"""AdamW with decoupled weight decay on the matmul weights only.

Decay: every weight of 2+ dims that takes part in a matmul — Pattention key/value tokens (they ARE the
layer's weights), the baseline's linear weights. No decay: the token embedding (also the tied output head),
norms and biases. On CPU the optimizer is torch's AdamW (no FusedAdam compile) as `EagerAdamW`; on GPU
DeepSpeed's fused one.

Its moments as a portable file (what a stage exports, growth carries and the next stage loads) are
tfctl/model_dir/optimizer_file.py.
"""

import inspect

import torch


def is_decayed(name: str, param: torch.Tensor) -> bool:
    return param.ndim >= 2 and not name.startswith("embedding.")


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (decay if is_decayed(name, param) else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class EagerAdamW(torch.optim.AdamW):
    """torch's AdamW — the same class, the same arithmetic, the same state dict — without the dynamo guards.

    torch wraps `add_param_group`, `zero_grad`, `state_dict`, `load_state_dict` and `step` so that a
    `torch.compile` tracing *through* the optimizer skips them; the wrappers import `torch._dynamo` at their
    first call: 1.5 s of a 2-core CPU, most of a stage's setup (issue 17). tfctl compiles the model
    (`train.compile`), never the optimizer step, so nothing traces these methods: the functions under the
    wrappers are called directly (`__wrapped__`); torch's step hooks and profiling wrap `step` as before."""

    add_param_group = inspect.unwrap(torch.optim.Optimizer.add_param_group)
    zero_grad = inspect.unwrap(torch.optim.Optimizer.zero_grad)
    state_dict = inspect.unwrap(torch.optim.Optimizer.state_dict)
    load_state_dict = inspect.unwrap(torch.optim.Optimizer.load_state_dict)
    _adamw_step = inspect.unwrap(torch.optim.AdamW.step)  # also past the profiling hook of a used class

    def step(self, closure=None):
        with torch.set_grad_enabled(self.defaults["differentiable"]):  # the rest of what torch's wrapper does
            return self._adamw_step(closure)


def build_optimizer(model: torch.nn.Module, spec, device_type: str) -> torch.optim.Optimizer:
    train, lr = spec.train, spec.schedule.lr
    groups = param_groups(model, train.weight_decay)
    if device_type == "cuda":
        from deepspeed.ops.adam import FusedAdam

        return FusedAdam(groups, lr=lr, betas=tuple(train.betas), eps=train.eps, adam_w_mode=True)
    return EagerAdamW(groups, lr=lr, betas=tuple(train.betas), eps=train.eps)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
