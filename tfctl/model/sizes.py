"""Sizes as numbers: parse "1.4b", count parameters analytically, solve the shape that reaches a size.

Pure arithmetic on configs; nothing here builds a model.
"""

import dataclasses
import re

from tfctl.model.config import ModelConfig, TokenformerConfig, TransformerConfig

MAX_COUNT = 10**15  # beyond any real model or budget: a typo (or inf), refused before it overflows something
_SUFFIXES = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}
_COUNT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmbgt]?)\s*$", re.IGNORECASE)


def parse_count(text: str | int | float) -> int:
    """ "124m" → 124_000_000, "1.4b" → 1_400_000_000, "350M", "1_400_000_000", 2048 → 2048.

    Raises ValueError for anything that is not a positive count.
    """
    if isinstance(text, bool):
        raise ValueError(f"not a count: {text!r}")
    if isinstance(text, int | float):
        value = text
    else:
        match = _COUNT.match(str(text).replace("_", ""))
        if not match:
            raise ValueError(f"not a count like 124m or 1.4b: {text!r}")
        value = float(match.group(1)) * _SUFFIXES[match.group(2).lower()]
    if value <= 0 or value != value:
        raise ValueError(f"must be positive: {text!r}")
    if value > MAX_COUNT:
        raise ValueError(f"more than 10^15: {text!r}")
    return int(round(value))


def format_count(value: float) -> str:
    """1_400_000_000 → "1.40B", 123_570_000 → "123.6M"."""
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.{2 if suffix in 'TB' else 1}f}{suffix}"
    return f"{value:.0f}"


def embedding_params(config: ModelConfig) -> int:
    return config.vocab_size * config.d_model


def block_params(config: ModelConfig) -> int:
    """Parameters of one block (all of them in projections: the block's LayerNorms carry none)."""
    d = config.d_model
    if isinstance(config, TokenformerConfig):
        # every Pattention layer holds n key tokens of width d_in and n value tokens of width d_out
        return 2 * d * (3 * config.qkv_tokens + config.proj_tokens + config.ffn_tokens)
    return 4 * d * d + 2 * d * config.ffn_hidden


def count_params(config: ModelConfig, non_embedding: bool = False) -> int:
    """Equal to `sum(p.numel() for p in build_model(config).parameters())` (tied head counted once)."""
    final_norm = 2 * config.d_model
    body = config.n_layers * block_params(config) + final_norm
    return body if non_embedding else body + embedding_params(config)


@dataclasses.dataclass(frozen=True)
class TokenRatios:
    """Parameter tokens of the qkv : proj : ffn layers, relative to each other (the paper: 1 : 1 : 4)."""

    qkv: float = 1.0
    proj: float = 1.0
    ffn: float = 4.0


def with_tokens(config: TokenformerConfig, n: int, ratios: TokenRatios = TokenRatios()) -> TokenformerConfig:
    """The config whose qkv layers hold `n` tokens and the others follow the ratios."""
    return dataclasses.replace(
        config,
        qkv_tokens=n,
        proj_tokens=round(n * ratios.proj / ratios.qkv),
        ffn_tokens=round(n * ratios.ffn / ratios.qkv),
    )


def solve_tokens(
    config: TokenformerConfig, target: int, ratios: TokenRatios = TokenRatios(), layers: int | None = None
) -> TokenformerConfig:
    """The Tokenformer config of this backbone (optionally with `layers` blocks) closest to `target` params.

    Parameters are linear in n (the qkv token count), so n = (target - fixed) / per-token, rounded.
    """
    config = dataclasses.replace(config, n_layers=layers or config.n_layers)
    fixed = count_params(with_tokens(config, 0, ratios))
    per_token = (count_params(with_tokens(config, 1000, ratios)) - fixed) / 1000
    n = round((target - fixed) / per_token)
    if n < 1:
        raise ValueError(
            f"{format_count(target)} is below this backbone's embedding and norms "
            f"({format_count(fixed)}); no token count reaches it"
        )
    return with_tokens(config, n, ratios)


# MLP widths are rounded to a multiple of this when the size allows (GPT-NeoX's and litgpt's `multiple_of`):
# a width one past it runs far slower on CPU BLAS (an MLP of 1537 instead of 1536: its up-projection took 41
# instead of 30 ms on the bench machine).
FFN_MULTIPLE = 64
# ... as long as the parameter count stays this close to the target; otherwise the exact width is kept
FFN_ROUNDING_TOLERANCE = 0.005


def solve_ffn_hidden(config: TransformerConfig, target: int, layers: int | None = None) -> TransformerConfig:
    """The baseline Transformer of this backbone with the MLP hidden size that reaches `target` params.

    The width is the nearest multiple of FFN_MULTIPLE when that keeps the parameters within
    FFN_ROUNDING_TOLERANCE of `target` (at any real size), else the exact width. FLOPs and parameter counts
    are always computed from the width chosen here, never from the target.
    """
    config = dataclasses.replace(config, n_layers=layers or config.n_layers, ffn_hidden=0)
    fixed = count_params(config)
    per_unit = 2 * config.d_model * config.n_layers
    exact = (target - fixed) / per_unit
    hidden = round(exact)
    if hidden < 1:
        raise ValueError(
            f"{format_count(target)} is below this backbone's attention and embedding ({format_count(fixed)})"
        )
    rounded = round(exact / FFN_MULTIPLE) * FFN_MULTIPLE
    if rounded > 0 and abs(fixed + per_unit * rounded - target) <= FFN_ROUNDING_TOLERANCE * target:
        hidden = rounded
    return dataclasses.replace(config, ffn_hidden=hidden)
