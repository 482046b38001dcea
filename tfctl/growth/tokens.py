"""Growing one Pattention layer: append parameter tokens as new rows of its key and value tensors.

The old tokens stay the first rows. A policy decides what the new rows hold and what τ becomes:

    paper     (the default) the official code: new keys N(0, 0.02), new values N(0, value_std), τ = sqrt(n).
              Not function-preserving: τ rescales every old score and the new keys change the norm.
    preserve  new key tokens 0, new value tokens N(0, value_std), τ held at its pre-growth value.
              The new scores are 0, GeLU(0) = 0 and the L2 norm of each score row is unchanged, so the
              layer computes exactly what it did. The non-zero new values give the new keys a gradient
              (keys and values both zero would be a saddle that never moves).

The default is the paper's: in the iso-FLOP study (docs/results.md) neither the paper's growth nor preserve
with a τ anneal won at every share of compute after the growth, and preserve with τ held was the worst of
three in the study before it. The recipe's `stages[].init` declares the same default (a test keeps them in
step).
"""

import math

import torch

POLICIES = ("paper", "preserve")
DEFAULT_POLICY = "paper"  # what a growth does unless told otherwise
KEY_STD = 0.02  # the official init of key tokens

# The Pattention modules of a block, by the config field that sets their token count.
MODULE_KINDS = {
    "attention.query": "qkv",
    "attention.key": "qkv",
    "attention.value": "qkv",
    "attention.output": "proj",
    "ffn": "ffn",
}


def pattention_kind(name: str) -> str | None:
    """ "blocks.3.attention.key.value_tokens" → "qkv"; None for tensors that are not parameter tokens."""
    if not name.startswith("blocks.") or not name.endswith((".key_tokens", ".value_tokens")):
        return None
    module = name.split(".", 2)[2].rsplit(".", 1)[0]  # blocks.3.attention.key.value_tokens → attention.key
    return MODULE_KINDS[module]


def wang_std(config) -> float:
    """The official init std of value tokens: 2 / (n_layers · sqrt(d_model))."""
    return 2.0 / (config.n_layers * math.sqrt(config.d_model))


def new_token_rows(
    rows: torch.Tensor, role: str, init: str, value_std: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Fill `rows` (the new tokens of a key or value tensor) as the policy says; returns it."""
    if init not in POLICIES:
        raise ValueError(f"unknown growth init {init!r} (expected one of {', '.join(POLICIES)})")
    if role == "key" and init == "preserve":
        return rows.zero_()
    return rows.normal_(0.0, KEY_STD if role == "key" else value_std, generator=generator)


def grow_param_tokens(
    tokens: torch.Tensor,
    num_tokens: int,
    role: str,
    init: str = DEFAULT_POLICY,
    value_std: float = 0.02,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """`tokens` (n, d) → (num_tokens, d): the old rows first, new rows initialised by the policy.

    `role` is "key" or "value" (which tensor of the Pattention layer this is).
    """
    if init not in POLICIES:
        raise ValueError(f"unknown growth init {init!r} (expected one of {', '.join(POLICIES)})")
    old = tokens.shape[0]
    if num_tokens < old:
        raise ValueError(f"cannot shrink parameter tokens from {old} to {num_tokens}")
    grown = tokens.new_empty((num_tokens, tokens.shape[1]))
    grown[:old] = tokens
    new_token_rows(grown[old:], role, init, value_std, generator)
    return grown


def grown_scales(config, target, init: str) -> dict:
    """The τ fields of the grown config: held at the source's τ for `preserve`, sqrt(n) for `paper`."""
    if init == "paper":
        return {"scale_mode": "sqrt_n", "qkv_scale": None, "proj_scale": None, "ffn_scale": None}
    taus = {
        kind: config.scale(kind) or math.sqrt(getattr(config, f"{kind}_tokens"))
        for kind in ("qkv", "proj", "ffn")
    }
    return {"scale_mode": "fixed", **{f"{kind}_scale": tau for kind, tau in taus.items()}}
