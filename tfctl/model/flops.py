"""Training FLOPs per token, analytically (nanoGPT's estimate, PaLM appendix B).

Every matmul weight costs 2 FLOPs per token forward and 4 backward: 6·N. A Pattention layer is no
different (2·n·d_in for the scores, 2·n·d_out for the values; Θ is O(n) and ignored). The tied output
head counts (a vocab×d matmul); the embedding lookup does not. Token-token attention adds
QKᵀ and A·V: 2·2·T·d per token per layer forward, ×3 for training.
"""

from tfctl.model.config import ModelConfig
from tfctl.model.sizes import block_params, embedding_params


def matmul_params(config: ModelConfig) -> int:
    """Weights that take part in a matmul per token: all blocks plus the tied output head."""
    return config.n_layers * block_params(config) + embedding_params(config)


def forward_flops_per_token(config: ModelConfig, seq_len: int | None = None) -> int:
    seq_len = seq_len or config.seq_len
    return 2 * matmul_params(config) + 4 * config.n_layers * seq_len * config.d_model


def training_flops_per_token(config: ModelConfig, seq_len: int | None = None) -> int:
    """Forward + backward FLOPs per token at sequence length `seq_len` (default: the config's)."""
    return 3 * forward_flops_per_token(config, seq_len)
