"""Model configs: one dataclass per family, stored as `config.json` next to the weights."""

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

PATTENTION_NORMS = ("l2_norm_gelu", "gelu_l2_norm", "softmax")
SCALE_MODES = ("sqrt_n", "fixed")


@dataclass
class TokenformerConfig:
    """A Tokenformer LM: every projection is a Pattention layer over learnable parameter tokens."""

    vocab_size: int = 50304
    seq_len: int = 1024
    n_layers: int = 12
    d_model: int = 768
    n_heads: int = 12
    qkv_tokens: int = 576  # parameter tokens of each of the Q, K, V Pattention layers
    proj_tokens: int = 576  # parameter tokens of the attention output Pattention layer
    ffn_tokens: int = 2304  # parameter tokens of the single FFN Pattention layer
    rotary_pct: float = 0.25  # fraction of each head's dims that get rotary embeddings
    norm: str = "l2_norm_gelu"  # Θ, the Pattention score normalisation
    scale_mode: str = "sqrt_n"  # τ = sqrt(current token count), or "fixed": τ stored below
    qkv_scale: float | None = None  # τ of the Q/K/V layers when scale_mode == "fixed"
    proj_scale: float | None = None
    ffn_scale: float | None = None
    family: str = "tokenformer"

    def __post_init__(self):
        if self.norm not in PATTENTION_NORMS:
            raise ValueError(f"norm must be one of {PATTENTION_NORMS}, got {self.norm!r}")
        if self.scale_mode not in SCALE_MODES:
            raise ValueError(f"scale_mode must be one of {SCALE_MODES}, got {self.scale_mode!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.scale_mode == "fixed":  # a fixed τ starts at sqrt(n) of the layer as first built
            self.qkv_scale = self.qkv_scale or math.sqrt(self.qkv_tokens)
            self.proj_scale = self.proj_scale or math.sqrt(self.proj_tokens)
            self.ffn_scale = self.ffn_scale or math.sqrt(self.ffn_tokens)

    def scale(self, kind: str) -> float | None:
        """τ of the `kind` ("qkv", "proj", "ffn") layers, or None for τ = sqrt(n)."""
        return getattr(self, f"{kind}_scale") if self.scale_mode == "fixed" else None


@dataclass
class TransformerConfig:
    """The baseline: the same backbone with bias-free linear projections and a GeLU MLP."""

    vocab_size: int = 50304
    seq_len: int = 1024
    n_layers: int = 12
    d_model: int = 768
    n_heads: int = 12
    ffn_hidden: int = 3072  # MLP hidden size; 4·d_model by convention, solved to match a target size
    rotary_pct: float = 0.25
    family: str = "transformer"

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")


ModelConfig = TokenformerConfig | TransformerConfig
FAMILIES = {"tokenformer": TokenformerConfig, "transformer": TransformerConfig}


def config_from_dict(values: dict) -> ModelConfig:
    """Build the config of the family named in `values["family"]`; unknown keys are an error."""
    family = values.get("family", "tokenformer")
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r} (expected one of {sorted(FAMILIES)})")
    cls = FAMILIES[family]
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {family} config keys: {', '.join(unknown)}")
    return cls(**values)


def config_to_dict(config: ModelConfig) -> dict:
    return asdict(config)


def save_config(config: ModelConfig, path: str | Path) -> None:
    Path(path).write_text(json.dumps(config_to_dict(config), indent=2) + "\n")


def load_config(path: str | Path) -> ModelConfig:
    return config_from_dict(json.loads(Path(path).read_text()))
