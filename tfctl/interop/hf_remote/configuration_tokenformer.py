"""Hugging Face config of a Tokenformer (or of tfctl's baseline Transformer), for trust_remote_code loading.

Written by `tfctl export --hf`; depends on transformers only.
"""

from transformers import PretrainedConfig


class TokenformerConfig(PretrainedConfig):
    model_type = "tokenformer"

    def __init__(
        self,
        family: str = "tokenformer",
        vocab_size: int = 50304,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        max_position_embeddings: int = 1024,
        rotary_pct: float = 0.25,
        rotary_emb_base: float = 10000.0,
        layer_norm_eps: float = 1e-5,
        qkv_tokens: int = 576,
        proj_tokens: int = 576,
        ffn_tokens: int = 2304,
        pattention_norm: str = "l2_norm_gelu",
        qkv_scale: float | None = None,
        proj_scale: float | None = None,
        ffn_scale: float | None = None,
        intermediate_size: int = 3072,
        tie_word_embeddings: bool = True,
        **kwargs,
    ):
        """`family` "tokenformer": every projection is a Pattention layer over `*_tokens` parameter tokens
        (τ = sqrt(n) when `*_scale` is None); "transformer": linear projections and a GeLU MLP of
        `intermediate_size`."""
        self.family = family
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.max_position_embeddings = max_position_embeddings
        self.rotary_pct = rotary_pct
        self.rotary_emb_base = rotary_emb_base
        self.layer_norm_eps = layer_norm_eps
        self.qkv_tokens = qkv_tokens
        self.proj_tokens = proj_tokens
        self.ffn_tokens = ffn_tokens
        self.pattention_norm = pattention_norm
        self.qkv_scale = qkv_scale
        self.proj_scale = proj_scale
        self.ffn_scale = ffn_scale
        self.intermediate_size = intermediate_size
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)
