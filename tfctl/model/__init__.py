"""The models: Pattention, the Tokenformer LM and the baseline Transformer. Pure torch."""

from contextlib import nullcontext

import torch

from tfctl.model.config import (
    ModelConfig,
    TokenformerConfig,
    TransformerConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)
from tfctl.model.layers import CausalLM
from tfctl.model.pattention import Pattention
from tfctl.model.tokenformer import Tokenformer
from tfctl.model.transformer import Transformer


def build_model(config: ModelConfig, device: str | torch.device | None = None) -> CausalLM:
    """The model of `config.family`; `device="meta"` builds the shapes without allocating memory."""
    cls = Tokenformer if isinstance(config, TokenformerConfig) else Transformer
    with torch.device(device) if device is not None else nullcontext():
        return cls(config)


__all__ = [
    "CausalLM", "ModelConfig", "Pattention", "Tokenformer", "TokenformerConfig", "Transformer",
    "TransformerConfig", "build_model", "config_from_dict", "config_to_dict", "load_config", "save_config",
]
