"""A plain GPT, the speed reference of the training-step benchmark.

nanoGPT's shape, written here from scratch so the comparison does not depend on tfctl's own layers: learned
position embedding, LayerNorm with a weight (no bias), Q/K/V and output Linear layers, causal
`F.scaled_dot_product_attention`, a GeLU MLP of width 4d, the output head tied to the token embedding.
"""

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn


@dataclasses.dataclass
class ReferenceGPTConfig:
    vocab_size: int = 8192
    seq_len: int = 256
    n_layers: int = 6
    n_heads: int = 6
    d_model: int = 384


class SelfAttention(nn.Module):
    def __init__(self, config: ReferenceGPTConfig):
        super().__init__()
        d = config.d_model
        self.n_heads = config.n_heads
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.output = nn.Linear(d, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq_len, d = x.shape
        q, k, v = (
            t.view(batch, seq_len, self.n_heads, d // self.n_heads).transpose(1, 2)
            for t in self.qkv(x).split(d, dim=-1)
        )
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.output(y.transpose(1, 2).reshape(batch, seq_len, d))


class MLP(nn.Module):
    def __init__(self, config: ReferenceGPTConfig):
        super().__init__()
        self.up = nn.Linear(config.d_model, 4 * config.d_model, bias=False)
        self.down = nn.Linear(4 * config.d_model, config.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


class Block(nn.Module):
    def __init__(self, config: ReferenceGPTConfig):
        super().__init__()
        self.attention_norm = nn.LayerNorm(config.d_model, bias=False)
        self.attention = SelfAttention(config)
        self.mlp_norm = nn.LayerNorm(config.d_model, bias=False)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class ReferenceGPT(nn.Module):
    def __init__(self, config: ReferenceGPTConfig):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.position_embedding = nn.Embedding(config.seq_len, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.final_norm = nn.LayerNorm(config.d_model, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2 init: N(0, 0.02), residual projections scaled down by sqrt(2 · layers)."""
        for name, parameter in self.named_parameters():
            if parameter.dim() == 2:
                residual = name.endswith(("attention.output.weight", "mlp.down.weight"))
                std = 0.02 / math.sqrt(2 * self.config.n_layers) if residual else 0.02
                nn.init.normal_(parameter, std=std)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        positions = torch.arange(idx.shape[1], device=idx.device)
        x = self.token_embedding(idx) + self.position_embedding(positions)
        for block in self.blocks:
            x = block(x)
        logits = F.linear(self.final_norm(x), self.token_embedding.weight)
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))

    def get_num_params(self, non_embedding: bool = False) -> int:
        """Parameters counted once; non-embedding leaves out the token and position tables (nanoGPT's rule)."""
        total = sum(p.numel() for p in self.parameters())
        if non_embedding:
            total -= self.token_embedding.weight.numel() + self.position_embedding.weight.numel()
        return total

    def flops_per_token(self) -> int:
        """Training FLOPs per token: 6 · non-embedding matmul params + the head + causal attention, like
        tfctl.model.flops counts the other two models."""
        d, seq_len = self.config.d_model, self.config.seq_len
        matmul_params = self.config.n_layers * 12 * d * d + self.config.vocab_size * d
        attention = self.config.n_layers * 12 * seq_len * d  # QKᵀ and A·V: 2·2·T·d forward, ×3 training
        return 6 * matmul_params + attention
