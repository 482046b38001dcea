"""Depth growth: where new blocks go, and how they start as the identity on the residual stream.

A block adds `attention(x)` and `ffn(x)` to the residual stream, and each ends in a Pattention layer whose
output is Θ(·) · V_P. With the value tokens of the attention output projection and of the FFN at zero, both
branches add exactly 0: the block is the identity, whatever its keys and its Q/K/V layers hold. Those get
the official random init, so the block can learn:

    step 1  only the zeroed value tokens get a gradient (Θ of random keys is non-zero);
    step 2+ once they have moved, gradient flows into the keys and the Q/K/V layers too.

This is the zero-init of a residual branch's last projection (ReZero, Fixup, GPT-2's scaled init in the limit).
"""

import torch

from tfctl.growth.tokens import KEY_STD, pattention_kind

PLACEMENTS = ("append", "interleave")
ZEROED_MODULES = (".attention.output.value_tokens", ".ffn.value_tokens")


def layer_sources(old_layers: int, new_layers: int, placement: str = "append") -> list[int | None]:
    """For each new block, the old block it copies, or None for a new identity block.

    `append` puts the new blocks on top; `interleave` spreads them evenly between the old ones.
    """
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown layer placement {placement!r} (expected one of {', '.join(PLACEMENTS)})")
    if new_layers < old_layers:
        raise ValueError(f"cannot shrink from {old_layers} to {new_layers} layers")
    added = new_layers - old_layers
    if placement == "append":
        return list(range(old_layers)) + [None] * added
    sources: list[int | None] = []
    for i in range(old_layers):
        sources.append(i)
        sources.extend([None] * (added * (i + 1) // old_layers - sources.count(None)))
    return sources


def source_name(name: str, sources: list[int | None]) -> str | None:
    """The old state-dict name of `name` in the grown model, or None for a tensor of a new block."""
    if not name.startswith("blocks."):
        return name
    _, index, rest = name.split(".", 2)
    old = sources[int(index)]
    return None if old is None else f"blocks.{old}.{rest}"


def new_block_tensor(
    name: str,
    shape: tuple,
    init: str,
    value_std: float,
    dtype: torch.dtype,
    generator: torch.Generator | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """A tensor of a new block: official random init, with the branch outputs zeroed for `preserve`.
    Written into `out` (of `shape` and `dtype`) when given."""
    if pattention_kind(name) is None:
        raise ValueError(f"unexpected tensor in a new block: {name}")
    out = torch.empty(shape, dtype=dtype) if out is None else out
    if init == "preserve" and name.endswith(ZEROED_MODULES):
        return out.zero_()
    std = KEY_STD if name.endswith(".key_tokens") else value_std
    return out.normal_(0.0, std, generator=generator)
