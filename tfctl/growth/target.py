"""The config a model grows into: from a size ("1.4b"), a preset ("incremental-1.4b"), explicit token counts
("qkv=1024,ffn=4096") or a config, with the source's backbone and qkv:proj:ffn token ratios."""

import dataclasses

from tfctl.model import TokenformerConfig
from tfctl.model.presets import PRESETS
from tfctl.model.sizes import TokenRatios, count_params, format_count, parse_count, solve_tokens

BACKBONE = ("family", "vocab_size", "d_model", "n_heads", "rotary_pct", "norm")  # what growth never changes
GROWN = ("qkv_tokens", "proj_tokens", "ffn_tokens", "n_layers")  # what it may only increase
TOKEN_KINDS = ("qkv", "proj", "ffn")


def check_tokenformer(config) -> None:
    if not isinstance(config, TokenformerConfig):
        raise ValueError(
            f"the source is a baseline {type(config).__name__.removesuffix('Config')}: growth "
            "appends parameter tokens, which only a Tokenformer has"
        )


def backbone_changes(config, target) -> list[str]:
    """The backbone fields in which `target` differs from `config` (growth changes none of them)."""
    return [f for f in BACKBONE if getattr(config, f, None) != getattr(target, f, None)]


def shrunk_fields(config, target) -> list[str]:
    """The grown fields (tokens, layers) in which `target` is smaller than `config` (growth shrinks none)."""
    return [f for f in GROWN if getattr(target, f) < getattr(config, f)]


def check_backbone(config: TokenformerConfig, target: TokenformerConfig) -> None:
    changed = [f"{f} {getattr(config, f)} → {getattr(target, f)}" for f in backbone_changes(config, target)]
    if changed:
        raise ValueError(f"growth keeps the backbone, the target changes {', '.join(changed)}")


def check_growth(config: TokenformerConfig, target: TokenformerConfig) -> None:
    """ValueError unless `target` has the source's backbone and at least its tokens and layers."""
    check_tokenformer(config)
    check_tokenformer(target)
    check_backbone(config, target)
    shrunk = [f"{f} {getattr(config, f)} → {getattr(target, f)}" for f in shrunk_fields(config, target)]
    if shrunk:
        raise ValueError(f"growth cannot shrink: {', '.join(shrunk)}")


def token_ratios(config: TokenformerConfig) -> TokenRatios:
    return TokenRatios(qkv=config.qkv_tokens, proj=config.proj_tokens, ffn=config.ffn_tokens)


def _explicit_tokens(config: TokenformerConfig, text: str) -> dict:
    """ "qkv=1024,ffn=4096" → {"qkv_tokens": 1024, "ffn_tokens": 4096}; unnamed kinds keep their count."""
    counts = {}
    for part in text.split(","):
        kind, _, value = part.partition("=")
        kind = kind.strip()
        if kind not in TOKEN_KINDS:
            raise ValueError(f"unknown token kind {kind!r} in {text!r} (expected {', '.join(TOKEN_KINDS)})")
        counts[f"{kind}_tokens"] = parse_count(value)
    return counts


def target_config(
    config: TokenformerConfig, to: str | int | TokenformerConfig, layers: int | None = None
) -> TokenformerConfig:
    """The grown config of `config`: `to` is a size, a preset name, "qkv=N,proj=N,ffn=N" or a config.

    A size is solved by `solve_tokens` at the source's token ratios (with `layers` blocks if given).
    Raises ValueError with the reason for a shrink, another backbone, or a `to` that means nothing.
    """
    check_tokenformer(config)
    if layers is not None and layers < config.n_layers:
        raise ValueError(
            f"--layers {layers} is fewer than the source's {config.n_layers} blocks: growth cannot remove blocks"
        )
    if isinstance(to, str) and to.strip() in PRESETS:
        to = PRESETS[to.strip()]
    if isinstance(to, TokenformerConfig):
        check_backbone(config, to)
        target = dataclasses.replace(
            config,
            n_layers=layers or to.n_layers,
            **{f"{k}_tokens": getattr(to, f"{k}_tokens") for k in TOKEN_KINDS},
        )
    elif isinstance(to, str) and "=" in to:
        target = dataclasses.replace(
            config, n_layers=layers or config.n_layers, **_explicit_tokens(config, to)
        )
    elif isinstance(to, str | int) and not isinstance(to, bool):
        try:
            size = parse_count(to)
        except ValueError:
            raise ValueError(
                f"{to!r} is not a size like 354m or 1.4b, a preset "
                f"({', '.join(PRESETS)}) or tokens like qkv=1024,ffn=4096"
            ) from None
        smallest = count_params(dataclasses.replace(config, n_layers=layers or config.n_layers))
        if size < smallest:
            raise ValueError(
                f"{format_count(size)} is less than the {format_count(smallest)} parameters that "
                f"{layers or config.n_layers} blocks at the source's token counts already hold: "
                "growth cannot shrink (ask for more parameters or fewer blocks)"
            )
        target = solve_tokens(config, size, token_ratios(config), layers)
        shrunk = [f for f in GROWN if getattr(target, f) < getattr(config, f)]
        if shrunk:
            raise ValueError(
                f"{format_count(size)} with {target.n_layers} layers solves to "
                f"{target.qkv_tokens} qkv tokens per layer, fewer than the source's "
                f"{config.qkv_tokens} ({format_count(count_params(config))}): growth cannot shrink"
            )
    else:
        raise ValueError(f"cannot grow to {to!r}")
    check_growth(config, target)
    return target
