"""Full fp32 weights and AdamW moments out of (and moments into) a DeepSpeed engine, whatever the ZeRO stage.

ZeRO 0 in fp32 keeps full fp32 parameters and a plain torch optimizer on every rank: read them directly.
bf16/fp16 at ZeRO 0 keep fp32 masters in DeepSpeed's FP16 optimizer wrappers: read those. Otherwise the fp32 master weights and moments live in (partitioned) optimizer state: DeepSpeed's
tensor-fragment API (`safe_get_full_fp32_param` / `safe_get_full_optimizer_state`) gathers them. Those calls
are collective: every rank runs these functions; rank 0 writes.
"""

import hashlib
import logging
from pathlib import Path

import torch
import torch.distributed as dist

from tfctl.errors import UserError
from tfctl.model_dir.optimizer_file import MOMENTS, OPTIMIZER_FILE, save_moments_file
from tfctl.model_dir.weights import save_model_dir
from tfctl.stage.manifest import write_manifest

log = logging.getLogger(__name__)


def is_plain_engine(engine) -> bool:
    """True when the engine's optimizer is our torch optimizer itself (ZeRO 0, fp32)."""
    return (
        isinstance(engine.optimizer, torch.optim.Optimizer)
        and not engine.zero_optimization()
        and not engine.bfloat16_enabled()
        and not engine.fp16_enabled()
    )


def _master_views(engine) -> dict[int, tuple[torch.Tensor, dict]] | None:
    """fp16/bf16 at ZeRO 0 (DeepSpeed's FP16_Optimizer / FP16_UnfusedOptimizer): each parameter's fp32 master
    and Adam moments (created, zero, when the optimizer has not stepped yet), by id of the live parameter."""
    optimizer = engine.optimizer
    if engine.zero_optimization() or not hasattr(optimizer, "fp16_groups"):
        return None
    views = {}
    if hasattr(optimizer, "fp32_groups_flat"):  # fused: one flat master per group
        masters = []
        for params, flat in zip(optimizer.fp16_groups, optimizer.fp32_groups_flat, strict=True):
            offsets = torch.tensor([0] + [p.numel() for p in params]).cumsum(0).tolist()
            masters += [
                (p, flat, flat.narrow(0, start, p.numel()).view_as(p))
                for p, start in zip(params, offsets[:-1], strict=True)
            ]
    elif hasattr(optimizer, "fp32_groups"):  # unfused: one master per parameter
        masters = [
            (p, m, m)
            for params, group in zip(optimizer.fp16_groups, optimizer.fp32_groups, strict=True)
            for p, m in zip(params, group, strict=True)
        ]
    else:
        return None
    for param, holder, master in masters:
        state = optimizer.optimizer.state[holder]
        for key in MOMENTS:
            state.setdefault(key, torch.zeros_like(holder))
        if holder is master:
            views[id(param)] = (master, {key: state[key] for key in MOMENTS})
        else:
            start = master.data_ptr() - holder.data_ptr()
            start //= holder.element_size()
            views[id(param)] = (
                master,
                {key: state[key].narrow(0, start, param.numel()).view_as(param) for key in MOMENTS},
            )
    return views


def full_fp32_weights(engine) -> dict[str, torch.Tensor]:
    from deepspeed.utils import safe_get_full_fp32_param

    views = _master_views(engine)
    weights = {}
    for name, param in engine.module.named_parameters():
        if is_plain_engine(engine):
            full = param.detach()
        elif views is not None:
            full = views[id(param)][0]
        else:
            full = safe_get_full_fp32_param(param)
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
    """{"{name}.exp_avg": ..., "{name}.exp_avg_sq": ...} in fp32, or None when not reachable."""
    from deepspeed.utils import safe_get_full_optimizer_state

    if not is_plain_engine(engine):
        _link_moment_fragments(engine)
    views = _master_views(engine)
    moments = {}
    for name, param in engine.module.named_parameters():
        for key in MOMENTS:
            if is_plain_engine(engine):
                value = engine.optimizer.state.get(param, {}).get(key)
                value = torch.zeros_like(param) if value is None else value
            elif views is not None:
                value = views[id(param)][1][key]
            else:
                value = safe_get_full_optimizer_state(param, key)
                if value is None:
                    return None
            moments[f"{name}.{key}"] = value.detach().float().cpu().clone()
    return moments


def load_moments(engine, moments: dict[str, torch.Tensor], step: int) -> None:
    """Put carried moments (already grown to this model's shapes) into the optimizer before training."""
    from deepspeed.utils import safe_set_full_optimizer_state

    params = dict(engine.module.named_parameters())
    expected = {f"{name}.{key}" for name in params for key in MOMENTS}
    if set(moments) != expected:
        missing, extra = sorted(expected - set(moments)), sorted(set(moments) - expected)
        raise UserError(
            f"init_optimizer does not match the model: missing {missing[:3]}, unexpected {extra[:3]}"
        )
    if not is_plain_engine(engine):
        # DeepSpeed sets a parameter's moments through its flat fp32 partition's optimizer state, which
        # torch's AdamW only creates at the first step (issue 15: "exp_avg not found in optimizer state
        # fragment" at ZeRO 1/2, a KeyError at ZeRO 3): create it first, zero, as that step would
        _create_moments(engine)
        _link_moment_fragments(engine)
    views = _master_views(engine)
    for name, param in params.items():
        for key in MOMENTS:
            value = moments[f"{name}.{key}"]
            if tuple(value.shape) != tuple(getattr(param, "ds_shape", param.shape)):
                raise UserError(
                    f"init_optimizer: {name}.{key} has shape {tuple(value.shape)}, "
                    f"the model wants {tuple(param.shape)}"
                )
            value = value.to(param.device, torch.float32)
            if is_plain_engine(engine):
                state = engine.optimizer.state[param]
                state[key] = value.clone()
            elif views is not None:
                views[id(param)][1][key].copy_(value)
            else:
                safe_set_full_optimizer_state(param, value, key)
    _set_step(engine, step)


def _moment_holders(engine) -> tuple[torch.optim.Optimizer, list[torch.Tensor]]:
    """The torch optimizer that holds the moments, and the tensors it steps: our parameters (ZeRO 0, fp32),
    or DeepSpeed's fp32 masters (flat partitions under ZeRO; ZeRO 3 lists them in no param group between
    steps)."""
    if is_plain_engine(engine):
        optimizer = engine.optimizer
    else:
        optimizer = getattr(engine.optimizer, "optimizer", engine.optimizer)
    flats = getattr(engine.optimizer, "fp32_partitioned_groups_flat", None)
    return optimizer, list(flats) if flats is not None else [
        p for group in optimizer.param_groups for p in group["params"]
    ]


def _create_moments(engine) -> None:
    """Zero moments for every tensor the optimizer steps, as Adam's first step would create them."""
    optimizer, tensors = _moment_holders(engine)
    for tensor in tensors:
        state = optimizer.state[tensor]
        for key in MOMENTS:
            if key not in state:
                state[key] = torch.zeros_like(tensor, dtype=torch.float32)


def _set_step(engine, step: int) -> None:
    """Adam's bias correction reads the step: carry it, or carried moments would be over-corrected."""
    _create_moments(engine)
    optimizer, tensors = _moment_holders(engine)
    torch_adam = isinstance(
        optimizer, torch.optim.Adam | torch.optim.AdamW
    )  # a tensor step; FusedAdam an int
    for group in optimizer.param_groups:
        if "step" in group:  # FusedAdam also keeps the step per group
            group["step"] = step
    for tensor in tensors:
        optimizer.state[tensor]["step"] = torch.tensor(float(step)) if torch_adam else step


def export_final(
    engine, config, out: Path, tokenizer: Path | None, step: int, extra: dict, rank: int
) -> None:
    """`out/` = model.safetensors + config.json + tokenizer.json (+ optimizer.safetensors), then manifest.json
    (size + sha256 of each file): what tfctl.stage.completion verifies. Collective."""
    weights = full_fp32_weights(engine)
    moments = full_moments(engine)
    if rank != 0:
        return
    save_model_dir(weights, config, out, tokenizer=tokenizer, extra=extra)
    if moments is None:
        log.warning("optimizer moments not exported (not reachable with this precision/ZeRO stage)")
    else:
        save_moments_file(moments, step, out / OPTIMIZER_FILE)
    write_manifest(out)


def rank_param_checksums(engine, world_size: int) -> list[str] | None:
    """Each rank's SHA-256 of its live parameters (collective): data-parallel ranks must agree bit for bit.
    None under ZeRO 3, where no rank holds whole parameters."""
    if engine.zero_optimization_stage() == 3:
        return None
    digest = hashlib.sha256()
    for name, param in engine.module.named_parameters():
        digest.update(name.encode())
        digest.update(param.detach().float().cpu().numpy().tobytes())
    checksums = [None] * world_size
    dist.all_gather_object(checksums, digest.hexdigest()[:16])
    return checksums
