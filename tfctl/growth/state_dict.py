"""`grow`: a trained Tokenformer's config + state dict → the grown config + state dict. Pure torch."""

import dataclasses
import itertools
import math
from collections.abc import Iterator, Mapping

import torch

from tfctl.growth.depth import layer_sources, new_block_tensor, source_name
from tfctl.growth.target import check_growth
from tfctl.growth.tokens import (
    DEFAULT_POLICY,
    POLICIES,
    grown_scales,
    new_token_rows,
    pattention_kind,
    wang_std,
)
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


def plan_growth(
    config: TokenformerConfig,
    state_dict: Mapping[str, torch.Tensor],
    target_config: TokenformerConfig,
    init: str = DEFAULT_POLICY,
    placement: str = "append",
) -> tuple[TokenformerConfig, list[int | None]]:
    """Check that `state_dict` of `config` can grow to `target_config`; the grown config (τ set by `init`)
    and, for each grown block, the old block it copies (None: a new block)."""
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
    return new_config, layer_sources(config.n_layers, new_config.n_layers, placement)


def grown_blocks(
    state_dict: Mapping[str, torch.Tensor],
    new_config: TokenformerConfig,
    sources: list[int | None],
    init: str = DEFAULT_POLICY,
    seed: int = 0,
    value_std: float | None = None,
    buffers: int = 0,
) -> Iterator[tuple[str, Iterator[torch.Tensor]]]:
    """Each tensor of the grown state dict, in order, as its name and its row blocks: the old tensor (the
    source's own, not a copy) and, for parameter tokens, the new rows. With `buffers` > 0 the new blocks
    take turns in that many buffers (each the size of the largest block): block k's memory is reused by
    block k + `buffers`, so consume (write) each block before asking for that one. 0: a new tensor each.
    """
    value_std = wang_std(new_config) if value_std is None else value_std
    generator = torch.Generator().manual_seed(seed)
    dtype = state_dict["embedding.weight"].dtype
    shapes = state_shapes(new_config)
    named = {name: source_name(name, sources) for name in shapes}

    def new_rows(name: str) -> int:
        old_name = named[name]
        return shapes[name][0] - (0 if old_name is None else state_dict[old_name].shape[0])

    largest = max((new_rows(name) * math.prod(shape[1:]) for name, shape in shapes.items()), default=0)
    ring = [torch.empty(largest, dtype=dtype) for _ in range(buffers)]
    turn = itertools.count()

    def empty(shape: tuple) -> torch.Tensor:
        if not ring:
            return torch.empty(shape, dtype=dtype)
        return ring[next(turn) % len(ring)][: math.prod(shape)].view(shape)

    def blocks(name: str, shape: tuple) -> Iterator[torch.Tensor]:
        old_name = named[name]
        if old_name is None:
            yield new_block_tensor(name, shape, init, value_std, dtype, generator, out=empty(shape))
            return
        yield state_dict[old_name]
        rows = new_rows(name)
        if pattention_kind(name) is not None and rows > 0:
            role = "key" if name.endswith(".key_tokens") else "value"
            yield new_token_rows(empty((rows, *shape[1:])), role, init, value_std, generator)

    for name, shape in shapes.items():
        yield name, blocks(name, shape)


def grow(
    config: TokenformerConfig,
    state_dict: Mapping[str, torch.Tensor],
    target_config: TokenformerConfig,
    init: str = DEFAULT_POLICY,
    seed: int = 0,
    value_std: float | None = None,
    placement: str = "append",
) -> tuple[TokenformerConfig, dict[str, torch.Tensor]]:
    """Grow `state_dict` of `config` to the token counts and layers of `target_config`.

    Every Pattention tensor keeps its old tokens as the first rows; `init` ("paper", the default, or
    "preserve", see tokens.py) fills the new rows and sets τ; new blocks go where `placement` says (see
    depth.py).
    `value_std` is the std of new value tokens (default: the official init of the grown model).
    The input is not modified; the result holds no tensor of it. (`grow_model_dir` streams the same
    blocks to the file instead of building this dict.)
    """
    new_config, sources = plan_growth(config, state_dict, target_config, init, placement)
    pieces = grown_blocks(state_dict, new_config, sources, init, seed, value_std)
    return new_config, {name: torch.cat(list(blocks)) for name, blocks in pieces}
