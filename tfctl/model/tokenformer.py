"""The Tokenformer causal LM: a pre-norm Transformer whose every projection is a Pattention layer."""

import math

from torch import nn

from tfctl.model.config import TokenformerConfig
from tfctl.model.layers import CausalLM, causal_attention, layer_norm
from tfctl.model.pattention import Pattention, pattention_same_input


class TokenformerAttention(nn.Module):
    """Q, K, V and the output projection are Pattention layers; token-token attention is unchanged."""

    def __init__(self, config: TokenformerConfig):
        super().__init__()
        d, norm = config.d_model, config.norm
        self.n_heads = config.n_heads
        self.query = Pattention(d, d, config.qkv_tokens, norm, config.scale("qkv"))
        self.key = Pattention(d, d, config.qkv_tokens, norm, config.scale("qkv"))
        self.value = Pattention(d, d, config.qkv_tokens, norm, config.scale("qkv"))
        self.output = Pattention(d, d, config.proj_tokens, norm, config.scale("proj"))

    def forward(self, x, rotary, cache=None):
        q, k, v = pattention_same_input([self.query, self.key, self.value], x)  # 3 × (B, T, d)
        return self.output(causal_attention(q, k, v, self.n_heads, rotary, cache))  # (B, T, d)


class TokenformerBlock(nn.Module):
    def __init__(self, config: TokenformerConfig):
        super().__init__()
        self.attention = TokenformerAttention(config)
        # The FFN is ONE Pattention layer: Θ is its non-linearity, no separate activation.
        self.ffn = Pattention(
            config.d_model, config.d_model, config.ffn_tokens, config.norm, config.scale("ffn")
        )

    def forward(self, x, rotary, cache=None):
        x = x + self.attention(layer_norm(x), rotary, cache)  # (B, T, d)
        return x + self.ffn(layer_norm(x))  # (B, T, d)


class Tokenformer(CausalLM):
    def __init__(self, config: TokenformerConfig):
        super().__init__(config)
        self.blocks = nn.ModuleList(TokenformerBlock(config) for _ in range(config.n_layers))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official init: embedding and key tokens N(0, 0.02), value tokens "wang init"."""
        nn.init.normal_(self.embedding.weight, std=0.02)
        value_std = 2.0 / (self.config.n_layers * math.sqrt(self.config.d_model))
        for module in self.pattention_layers().values():
            module.reset_parameters(key_std=0.02, value_std=value_std)

    def pattention_layers(self) -> dict[str, Pattention]:
        return {name: m for name, m in self.named_modules() if isinstance(m, Pattention)}
