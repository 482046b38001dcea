"""A Tokenformer causal LM for Hugging Face transformers (trust_remote_code), written by `tfctl export --hf`.

Same module names and math as tfctl's model, so tfctl's `model.safetensors` loads as is: the output head is
tied to `embedding.weight` (stored once). Depends on torch and transformers only. `generate()` keeps the
standard attention K/V cache (transformers' `Cache`, passed as `cache`): every projection, Pattention's
included, depends on its own token only, so a step runs the new token alone. With `use_cache=False` every
step runs the last `max_position_embeddings` tokens again.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from .configuration_tokenformer import TokenformerConfig

# transformers 5 renamed `past_key_values` to `cache` (outputs and generate's inputs): the name this one uses
CACHE = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"


def layer_norm(x):
    """The blocks' non-parametric LayerNorm."""
    return F.layer_norm(x, (x.shape[-1],))


def theta(scores, norm: str, tau: float):
    """Pattention's score normalisation over the parameter tokens (the official code's three variants)."""
    if norm == "l2_norm_gelu":
        return F.gelu(scores * (scores.pow(2).sum(-1, keepdim=True).clamp_min(1e-12).rsqrt() * tau))
    if norm == "gelu_l2_norm":
        activated = F.gelu(scores)
        return activated * (activated.pow(2).sum(-1, keepdim=True).clamp_min(1e-12).rsqrt() * tau)
    if norm == "softmax":
        return F.softmax(scores, dim=-1) * (tau * tau)
    raise ValueError(f"unknown Pattention norm {norm!r}")


class Pattention(nn.Module):
    """Θ(x · K_Pᵀ) · V_P: input tokens attend to learnable key/value parameter tokens."""

    def __init__(self, d_in: int, d_out: int, num_tokens: int, norm: str, scale: float | None):
        super().__init__()
        self.norm, self.scale = norm, scale
        self.key_tokens = nn.Parameter(torch.empty(num_tokens, d_in))
        self.value_tokens = nn.Parameter(torch.empty(num_tokens, d_out))

    def forward(self, x):
        tau = self.scale if self.scale is not None else math.sqrt(self.key_tokens.shape[0])
        return theta(x @ self.key_tokens.t(), self.norm, tau) @ self.value_tokens


def rotate(x, rot_dim: int, base: float, start: int = 0):
    """GPT-NeoX rotary embeddings on the first `rot_dim` dims of each head, at positions start, start + 1, ...
    x: (batch, heads, seq, head_dim)."""
    if rot_dim == 0:
        return x
    inv_freq = 1.0 / base ** (torch.arange(0, rot_dim, 2, dtype=torch.float32, device=x.device) / rot_dim)
    positions = torch.arange(start, start + x.shape[-2], dtype=torch.float32, device=x.device)
    angles = torch.outer(positions, inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    rotated, passed = x[..., :rot_dim], x[..., rot_dim:]
    half = rot_dim // 2
    rotate_half = torch.cat((-rotated[..., half:], rotated[..., :half]), dim=-1)
    return torch.cat((rotated * cos + rotate_half * sin, passed), dim=-1)


class Attention(nn.Module):
    def __init__(self, config: TokenformerConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx  # its entry in the generation cache
        d = config.hidden_size
        self.n_heads = config.num_attention_heads
        head_dim = d // self.n_heads
        self.rot_dim = int(head_dim * config.rotary_pct) // 2 * 2
        self.base = config.rotary_emb_base
        if config.family == "tokenformer":
            norm, n = config.pattention_norm, config.qkv_tokens
            self.query = Pattention(d, d, n, norm, config.qkv_scale)
            self.key = Pattention(d, d, n, norm, config.qkv_scale)
            self.value = Pattention(d, d, n, norm, config.qkv_scale)
            self.output = Pattention(d, d, config.proj_tokens, norm, config.proj_scale)
        else:
            self.query, self.key, self.value, self.output = (nn.Linear(d, d, bias=False) for _ in range(4))

    def forward(self, x, cache=None):
        """With `cache`, x are the tokens after the cached ones: they attend to those and to each other."""
        batch, seq_len, d = x.shape
        q, k, v = (
            t.view(batch, seq_len, self.n_heads, d // self.n_heads).transpose(1, 2)
            for t in (self.query(x), self.key(x), self.value(x))
        )
        past = cache.get_seq_length(self.layer_idx) if cache is not None else 0
        q, k = rotate(q, self.rot_dim, self.base, past), rotate(k, self.rot_dim, self.base, past)
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)
        mask = None
        if past and seq_len > 1:  # new token i sees the cache and the new tokens up to i
            mask = torch.ones(seq_len, past + seq_len, dtype=torch.bool, device=x.device).tril(past)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=past == 0)
        return self.output(y.transpose(1, 2).reshape(batch, seq_len, d))


class MLP(nn.Module):
    def __init__(self, config: TokenformerConfig):
        super().__init__()
        self.up = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x):
        return self.down(F.gelu(self.up(x)))


class Block(nn.Module):
    """Pre-norm: x + attention(LN(x)), then + FFN(LN(x)); a Tokenformer's FFN is one Pattention layer."""

    def __init__(self, config: TokenformerConfig, layer_idx: int):
        super().__init__()
        self.attention = Attention(config, layer_idx)
        if config.family == "tokenformer":
            d = config.hidden_size
            self.ffn = Pattention(d, d, config.ffn_tokens, config.pattention_norm, config.ffn_scale)
        else:
            self.mlp = MLP(config)

    def forward(self, x, cache=None):
        x = x + self.attention(layer_norm(x), cache)
        return x + (self.ffn if hasattr(self, "ffn") else self.mlp)(layer_norm(x))


class TokenformerPreTrainedModel(PreTrainedModel):
    config_class = TokenformerConfig
    base_model_prefix = "tokenformer"
    _no_split_modules = ["Block"]

    def _init_weights(self, module):
        if isinstance(module, Pattention):
            nn.init.normal_(module.key_tokens, std=0.02)
            nn.init.normal_(module.value_tokens, std=0.02)
        elif isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class TokenformerForCausalLM(TokenformerPreTrainedModel, GenerationMixin):
    _tied_weights_keys = {"lm_head.weight": "embedding.weight"}

    def __init__(self, config: TokenformerConfig):
        super().__init__(config)
        self.embedding = nn.Embedding(config.vocab_size, config.hidden_size)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.num_hidden_layers))
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.embedding

    def set_input_embeddings(self, value):
        self.embedding = value

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    def forward(
        self, input_ids=None, attention_mask=None, labels=None, cache=None, use_cache=None, **kwargs
    ) -> CausalLMOutputWithPast:
        """Causal over the whole row: left padding is not supported (pad on the right, or batch one row).
        With `cache` (a transformers `Cache`), input_ids are the tokens after the cached ones."""
        cache = cache if cache is not None else kwargs.get("past_key_values")  # the name before cache
        x = self.embedding(input_ids)
        for block in self.blocks:
            x = block(x, cache)
        logits = self.lm_head(self.final_norm(x))
        loss = None
        if labels is not None:
            shifted = logits[:, :-1].float().reshape(-1, logits.shape[-1])
            loss = F.cross_entropy(shifted, labels[:, 1:].reshape(-1), ignore_index=-100)
        kept = cache if use_cache is not False else None
        return CausalLMOutputWithPast(loss=loss, logits=logits, **{CACHE: kept})

    def prepare_inputs_for_generation(self, input_ids, **kwargs):
        """transformers' own (the new tokens only with a cache); without one, the last
        max_position_embeddings tokens, as in training."""
        inputs = super().prepare_inputs_for_generation(input_ids, **kwargs)
        if inputs.get(CACHE) is None:
            inputs["input_ids"] = inputs["input_ids"][:, -self.config.max_position_embeddings :]
        return inputs
