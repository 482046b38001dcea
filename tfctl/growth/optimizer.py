"""Carrying AdamW state through growth: moments of old rows kept, moments of new rows and blocks zero.

With the AdamW step carried too, a new row's first update is ≈ 0.45·lr·sign(g) (bias correction ≈ 1, so
m/sqrt(v) = 0.1·g / sqrt(0.05·g²)), gentler than the lr·sign(g) of a fresh optimizer, while the old rows keep
their adapted step sizes: no restart shock.
"""

from collections.abc import Mapping

import torch

from tfctl.growth.depth import source_name
from tfctl.model_dir.optimizer_file import MOMENTS


def _pad_rows(moment: torch.Tensor, shape: tuple, name: str) -> torch.Tensor:
    if tuple(moment.shape) == shape:
        return moment.clone()
    if moment.ndim != len(shape) or tuple(moment.shape[1:]) != shape[1:] or moment.shape[0] > shape[0]:
        raise ValueError(
            f"optimizer state of {name} has shape {tuple(moment.shape)}, which does not grow into {shape}"
        )
    padded = moment.new_zeros(shape)
    padded[: moment.shape[0]] = moment
    return padded


def grow_optimizer_state(
    moments: Mapping[str, Mapping[str, torch.Tensor]],
    new_state_dict_shapes: Mapping[str, torch.Size | tuple | torch.Tensor],
    layer_sources: list[int | None] | None = None,
) -> dict[str, dict[str, torch.Tensor]]:
    """{param: {"exp_avg": T, "exp_avg_sq": T}} of the source → the same for the grown parameters.

    `new_state_dict_shapes` maps each grown parameter to its shape (or a tensor of it). `layer_sources`
    (from `depth.layer_sources`) says which old block each new one copies; None means blocks were appended.
    Parameters without old moments (new blocks) get zeros.
    """
    grown = {}
    for name, shape in new_state_dict_shapes.items():
        shape = tuple(shape.shape if isinstance(shape, torch.Tensor) else shape)
        old_name = source_name(name, layer_sources) if layer_sources is not None else name
        old = moments.get(old_name) if old_name is not None else None
        grown[name] = {
            key: _pad_rows(old[key], shape, name) if old is not None and key in old else torch.zeros(shape)
            for key in MOMENTS
        }
    return grown


def flatten_moments(moments: Mapping[str, Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """{param: {"exp_avg": T}} → {"param.exp_avg": T}, the layout of `optimizer.safetensors`."""
    return {f"{name}.{key}": tensor for name, state in moments.items() for key, tensor in state.items()}


def unflatten_moments(tensors: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    moments: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        name, moment = key.rsplit(".", 1)
        if moment not in MOMENTS:
            raise ValueError(f"unexpected optimizer tensor {key!r} (expected *.exp_avg / *.exp_avg_sq)")
        moments.setdefault(name, {})[moment] = tensor
    return moments
