"""`grow`: a trained Tokenformer's config + state dict → the grown config + state dict. Pure torch."""

import dataclasses
from collections.abc import Mapping

import torch

from tfctl.growth.depth import layer_sources, new_block_tensor, source_name
from tfctl.growth.target import check_growth
from tfctl.growth.tokens import POLICIES, grow_param_tokens, grown_scales, pattention_kind, wang_std
from tfctl.model import TokenformerConfig, build_model

PRESERVING_NORMS = ("l2_norm_gelu", "gelu_l2_norm")  # Θ(0) = 0 and the row norm ignores zero scores


def state_shapes(config) -> dict[str, tuple]:
    """Names and shapes of the state dict of `config`'s model, without allocating it."""
    return {name: tuple(t.shape) for name, t in build_model(config, device="meta").state_dict().items()}


def check_state_dict(config, state_dict: Mapping[str, torch.Tensor]) -> None:
    expected = state_shapes(config)
    if set(state_dict) != set(expected):
        missing, extra = sorted(set(expected) - set(state_dict)), sorted(set(state_dict) - set(expected))
        raise ValueError(f"weights do not match the config: missing {missing[:3]}, unexpected {extra[:3]}")
    for name, shape in expected.items():
        if tuple(state_dict[name].shape) != shape:
            raise ValueError(
                f"weights do not match the config: {name} has shape "
                f"{tuple(state_dict[name].shape)}, the config wants {shape}"
            )


def grow(
    config: TokenformerConfig,
    state_dict: Mapping[str, torch.Tensor],
    target_config: TokenformerConfig,
    init: str = "preserve",
    seed: int = 0,
    value_std: float | None = None,
    placement: str = "append",
) -> tuple[TokenformerConfig, dict[str, torch.Tensor]]:
    """Grow `state_dict` of `config` to the token counts and layers of `target_config`.

    Every Pattention tensor keeps its old tokens as the first rows; `init` ("preserve" or "paper", see
    tokens.py) fills the new rows and sets τ; new blocks go where `placement` says (see depth.py).
    `value_std` is the std of new value tokens (default: the official init of the grown model).
    The input is not modified; the result holds no tensor of it.
    """
    if init not in POLICIES:
        raise ValueError(f"unknown growth init {init!r} (expected one of {', '.join(POLICIES)})")
    check_growth(config, target_config)
    grows_tokens = any(
        getattr(target_config, f"{k}_tokens") > getattr(config, f"{k}_tokens") for k in ("qkv", "proj", "ffn")
    )
    if init == "preserve" and grows_tokens and config.norm not in PRESERVING_NORMS:
        raise ValueError(
            f"preserve growth is exact only for norm {' or '.join(PRESERVING_NORMS)}: "
            f"with {config.norm!r} a zero score still takes part; use --init paper"
        )
    check_state_dict(config, state_dict)

    new_config = dataclasses.replace(target_config, **grown_scales(config, target_config, init))
    sources = layer_sources(config.n_layers, new_config.n_layers, placement)
    value_std = wang_std(new_config) if value_std is None else value_std
    generator = torch.Generator().manual_seed(seed)
    dtype = state_dict["embedding.weight"].dtype

    new_state = {}
    for name, shape in state_shapes(new_config).items():
        old_name = source_name(name, sources)
        if old_name is None:
            new_state[name] = new_block_tensor(name, shape, init, value_std, dtype, generator)
        elif pattention_kind(name) is not None:
            role = "key" if name.endswith(".key_tokens") else "value"
            new_state[name] = grow_param_tokens(
                state_dict[old_name], shape[0], role, init, value_std, generator
            )
        else:
            new_state[name] = state_dict[old_name].clone()
    return new_config, new_state
