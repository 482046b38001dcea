"""Full fp32 weights and AdamW moments out of (and moments into) a DeepSpeed engine, whatever the ZeRO stage.

ZeRO 0 in fp32 keeps full fp32 parameters and a plain torch optimizer on every rank: read them directly.
Otherwise the fp32 master weights and moments live in (partitioned) optimizer state: DeepSpeed's
tensor-fragment API (`safe_get_full_fp32_param` / `safe_get_full_optimizer_state`) gathers them. Those calls
are collective: every rank runs these functions; rank 0 writes.
"""

import hashlib
import logging
from pathlib import Path

import torch

from tfctl.train.optimizer import MOMENTS, OPTIMIZER_FILE, save_moments_file

log = logging.getLogger(__name__)


def _plain(engine) -> bool:
    """True when the engine's optimizer is our torch optimizer itself (ZeRO 0, fp32)."""
    return isinstance(engine.optimizer, torch.optim.Optimizer) and not engine.zero_optimization() \
        and not engine.bfloat16_enabled() and not engine.fp16_enabled()


def full_fp32_weights(engine) -> dict[str, torch.Tensor]:
    from deepspeed.utils import safe_get_full_fp32_param

    weights = {}
    for name, param in engine.module.named_parameters():
        full = param.detach() if _plain(engine) else safe_get_full_fp32_param(param)
        if full is None:  # fp16 at ZeRO 0: no fp32 master reachable, the live weights are all there is
            full = param.detach()
        weights[name] = full.float().cpu().clone()
    return weights


def _link_moment_fragments(engine) -> None:
    """Point each parameter's fragment map at the optimizer's current moment tensors.

    ZeRO 1/2 and the bf16 optimizer link these lazily at their first step and drop the links when a checkpoint
    is loaded; the fragment API then fails. Re-linking is idempotent (private API, DeepSpeed 0.19)."""
    optimizer = engine.optimizer
    if hasattr(optimizer, "_lazy_init_hp_params_optimizer_state"):
        optimizer._hp_optimizer_states_linked = False
        optimizer._lazy_init_hp_params_optimizer_state()


def full_moments(engine) -> dict[str, torch.Tensor] | None:
    """{"{name}.exp_avg": ..., "{name}.exp_avg_sq": ...} in fp32, or None when not reachable (fp16, ZeRO 0)."""
    from deepspeed.utils import safe_get_full_optimizer_state

    if not _plain(engine):
        _link_moment_fragments(engine)
    moments = {}
    for name, param in engine.module.named_parameters():
        for key in MOMENTS:
            if _plain(engine):
                value = engine.optimizer.state.get(param, {}).get(key)
                value = torch.zeros_like(param) if value is None else value
            else:
                value = safe_get_full_optimizer_state(param, key)
                if value is None:
                    return None
            moments[f"{name}.{key}"] = value.detach().float().cpu().clone()
    return moments


def load_moments(engine, moments: dict[str, torch.Tensor], step: int) -> None:
    """Put carried moments (already grown to this model's shapes) into the optimizer before training."""
    from deepspeed.utils import safe_set_full_optimizer_state

    from tfctl.errors import UserError

    params = dict(engine.module.named_parameters())
    expected = {f"{name}.{key}" for name in params for key in MOMENTS}
    if set(moments) != expected:
        missing, extra = sorted(expected - set(moments)), sorted(set(moments) - expected)
        raise UserError(f"init_optimizer does not match the model: missing {missing[:3]}, unexpected {extra[:3]}")
    if not _plain(engine):
        _link_moment_fragments(engine)
    for name, param in params.items():
        for key in MOMENTS:
            value = moments[f"{name}.{key}"]
            if tuple(value.shape) != tuple(getattr(param, "ds_shape", param.shape)):
                raise UserError(f"init_optimizer: {name}.{key} has shape {tuple(value.shape)}, "
                                f"the model wants {tuple(param.shape)}")
            value = value.to(param.device, torch.float32)
            if _plain(engine):
                state = engine.optimizer.state[param]
                state[key] = value.clone()
            else:
                safe_set_full_optimizer_state(param, value, key)
    _set_step(engine, step)


def _set_step(engine, step: int) -> None:
    """Adam's bias correction reads the step: carry it, or carried moments would be over-corrected."""
    optimizer = engine.optimizer if _plain(engine) else getattr(engine.optimizer, "optimizer", engine.optimizer)
    for group in optimizer.param_groups:
        if "step" in group:  # FusedAdam keeps the step per group
            group["step"] = step
        for param in group["params"]:
            state = optimizer.state[param]
            if "exp_avg" not in state:
                state["exp_avg"] = torch.zeros_like(param, dtype=torch.float32)
                state["exp_avg_sq"] = torch.zeros_like(param, dtype=torch.float32)
            state["step"] = torch.tensor(float(step))


def export_final(engine, config, out: Path, tokenizer: Path | None, step: int, extra: dict, rank: int) -> None:
    """`out/` = model.safetensors + config.json + tokenizer.json (+ optimizer.safetensors). Collective."""
    from tfctl.model_dir import save_model_dir

    weights = full_fp32_weights(engine)
    moments = full_moments(engine)
    if rank != 0:
        return
    save_model_dir(weights, config, out, tokenizer=tokenizer, extra=extra)
    if moments is None:
        log.warning("optimizer moments not exported (not reachable with this precision/ZeRO stage)")
    else:
        save_moments_file(moments, step, out / OPTIMIZER_FILE)


def rank_param_checksums(engine, world_size: int) -> list[str] | None:
    """Each rank's SHA-256 of its live parameters (collective): data-parallel ranks must agree bit for bit.
    None under ZeRO 3, where no rank holds whole parameters."""
    import torch.distributed as dist

    if engine.zero_optimization_stage() == 3:
        return None
    digest = hashlib.sha256()
    for name, param in engine.module.named_parameters():
        digest.update(name.encode())
        digest.update(param.detach().float().cpu().numpy().tobytes())
    checksums = [None] * world_size
    dist.all_gather_object(checksums, digest.hexdigest()[:16])
    return checksums
