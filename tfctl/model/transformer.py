"""The baseline Transformer: the Tokenformer backbone with linear projections and a GeLU MLP."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from tfctl.model import fast
from tfctl.model.config import TransformerConfig
from tfctl.model.layers import CausalLM, causal_attention, layer_norm


class Attention(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        d = config.d_model
        self.n_heads = config.n_heads
        self.query = nn.Linear(d, d, bias=False)
        self.key = nn.Linear(d, d, bias=False)
        self.value = nn.Linear(d, d, bias=False)
        self.output = nn.Linear(d, d, bias=False)

    def forward(self, x, rotary, cache=None):
        if (
            fast.ENABLED
        ):  # one matmul for Q, K and V (their weights stacked: a copy of weights, not activations)
            qkv_weight = torch.cat((self.query.weight, self.key.weight, self.value.weight))
            q, k, v = F.linear(x, qkv_weight).chunk(3, dim=-1)  # 3 × (B, T, d)
        else:
            q, k, v = self.query(x), self.key(x), self.value(x)  # 3 × (B, T, d)
        return self.output(causal_attention(q, k, v, self.n_heads, rotary, cache))  # (B, T, d)


class MLP(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.up = nn.Linear(config.d_model, config.ffn_hidden, bias=False)
        self.down = nn.Linear(config.ffn_hidden, config.d_model, bias=False)

    def forward(self, x):
        return self.down(F.gelu(self.up(x)))  # (B, T, d) → (B, T, ffn_hidden) → (B, T, d)


class TransformerBlock(nn.Module):
    """Pre-norm like the Tokenformer block, with the same non-parametric LayerNorms."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.attention = Attention(config)
        self.mlp = MLP(config)

    def forward(self, x, rotary, cache=None):
        x = x + self.attention(layer_norm(x), rotary, cache)  # (B, T, d)
        return x + self.mlp(layer_norm(x))  # (B, T, d)


class Transformer(CausalLM):
    def __init__(self, config: TransformerConfig):
        super().__init__(config)
        self.blocks = nn.ModuleList(TransformerBlock(config) for _ in range(config.n_layers))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-NeoX init: N(0, 0.02), with the residual output projections at the "wang init" std."""
        nn.init.normal_(self.embedding.weight, std=0.02)
        output_std = 2.0 / (self.config.n_layers * math.sqrt(self.config.d_model))
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                std = output_std if name.endswith(("attention.output", "mlp.down")) else 0.02
                nn.init.normal_(module.weight, std=std)
