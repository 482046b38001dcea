"""The models: Pattention, the Tokenformer LM and the baseline Transformer. Pure torch.

The configs, sizes, FLOPs and presets are plain Python: importing them (as `tfctl plan` and recipe
validation do) must not import torch, so the torch modules are loaded on first use (PEP 562).
"""

from tfctl.model.config import (
    ModelConfig,
    TokenformerConfig,
    TransformerConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)

_LAZY = {
    "CausalLM": "tfctl.model.layers",
    "Pattention": "tfctl.model.pattention",
    "Tokenformer": "tfctl.model.tokenformer",
    "Transformer": "tfctl.model.transformer",
}


def build_model(config: ModelConfig, device=None):
    """The model of `config.family`; `device="meta"` builds the shapes without allocating memory (and
    without running the initialisation, which has no values to fill there)."""
    from contextlib import nullcontext

    import torch

    from tfctl.model.layers import SkipInit
    from tfctl.model.tokenformer import Tokenformer
    from tfctl.model.transformer import Transformer

    cls = Tokenformer if isinstance(config, TokenformerConfig) else Transformer
    meta = device is not None and torch.device(device).type == "meta"
    with (
        torch.device(device) if device is not None else nullcontext(),
        SkipInit() if meta else nullcontext(),
    ):
        return cls(config)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tfctl.model' has no attribute {name!r}")


__all__ = [
    "CausalLM",
    "ModelConfig",
    "Pattention",
    "Tokenformer",
    "TokenformerConfig",
    "Transformer",
    "TransformerConfig",
    "build_model",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "save_config",
]
