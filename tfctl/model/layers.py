"""What both model families share: rotary embeddings, causal attention with its KV cache, the LM shell
around the blocks."""

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from tfctl.model import fast
from tfctl.model.loss import linear_cross_entropy


class SkipInit(torch.overrides.TorchFunctionMode):
    """Inside it the `torch.nn.init` functions leave their tensor as it is: for building a model on the meta
    device, whose tensors hold no values (`build_model(device="meta")`). On meta, `normal_` runs a Python
    reference that imports torch._dynamo on first use: ~1 CPU-second of every command that only needs a
    model's shapes (grow, eval, generate)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__module__", None) == "torch.nn.init":
            return args[0] if args else kwargs["tensor"]
        return func(*args, **(kwargs or {}))


def layer_norm(x: torch.Tensor) -> torch.Tensor:
    """The non-parametric LayerNorm of the Tokenformer block (no weight, no bias)."""
    return F.layer_norm(x, (x.shape[-1],))


class Rotary(nn.Module):
    """GPT-NeoX rotary embeddings on the first `rotary_pct` of each head's dims.

    The rotated dims are two halves (x1, x2) turned by the angle of each position:
    (x1·cos - x2·sin, x2·cos + x1·sin); the other dims pass through (`rotate`; `fast.Rotate` in place).
    """

    def __init__(self, head_dim: int, rotary_pct: float, seq_len: int, base: float = 10000.0):
        super().__init__()
        self.rot_dim = int(head_dim * rotary_pct) // 2 * 2
        # built on meta (a model's shapes), the tables are computed on the CPU and moved: meta's arange and
        # division run Python references that import torch._dynamo (see SkipInit)
        meta = torch.get_default_device().type == "meta"
        with torch.device("cpu") if meta else contextlib.nullcontext():
            inv_freq = 1.0 / base ** (
                torch.arange(0, self.rot_dim, 2, dtype=torch.float32) / max(self.rot_dim, 1)
            )
            self.register_buffer("inv_freq", inv_freq, persistent=False)
            self._cache_len = 0
            self._extend(seq_len)
        if meta:
            self.to("meta")

    def _extend(self, seq_len: int) -> None:
        positions = torch.arange(seq_len, dtype=torch.float32, device=self.inv_freq.device)
        angles = torch.outer(positions, self.inv_freq)  # (seq, rot_dim / 2)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)
        self._cache_len = seq_len

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """x: (batch, heads, seq, head_dim) at positions start, start + 1, ... → same shape, rotated."""
        if self.rot_dim == 0:
            return x
        end = start + x.shape[-2]
        if end > self._cache_len or self.cos.device != x.device:
            self._extend(max(end, self._cache_len))
        cos, sin = self.cos[start:end].to(x.dtype), self.sin[start:end].to(x.dtype)  # (seq, rot_dim / 2)
        return fast.Rotate.apply(x, cos, sin) if fast.ENABLED else rotate(x, cos, sin)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """The plain rotation: the first 2·half dims of x (..., seq, head_dim) turned by the angles (cos, sin:
    (seq, half)), the others passed through. Same shape."""
    half = cos.shape[-1]
    x1, x2, rest = x[..., :half], x[..., half : 2 * half], x[..., 2 * half :]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest), dim=-1)


class LayerCache:
    """One attention layer's keys (rotated) and values of the tokens seen so far, (batch, heads, n, head_dim).

    The standard KV cache: every projection of a token (Pattention's included) depends on that token alone,
    so only token-token attention needs the past. Attention with rotary positions depends on relative
    positions only, so dropping the oldest entries (`keep_last`) leaves the others valid."""

    def __init__(self):
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None
        self.position = 0  # the absolute position of the next token

    def __len__(self) -> int:
        return 0 if self.keys is None else self.keys.shape[-2]

    def add(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new tokens' keys and values; returns all of them."""
        self.keys = k if self.keys is None else torch.cat((self.keys, k), dim=-2)
        self.values = v if self.values is None else torch.cat((self.values, v), dim=-2)
        self.position += k.shape[-2]
        return self.keys, self.values

    def keep_last(self, n: int) -> None:
        if self.keys is not None:
            self.keys, self.values = self.keys[..., len(self) - n :, :], self.values[..., len(self) - n :, :]


class KVCache:
    """Every layer's cache during one generation, and how many tokens of the sequence it has seen."""

    def __init__(self, n_layers: int):
        self.layers = [LayerCache() for _ in range(n_layers)]
        self.seen = 0  # tokens of the generated sequence fed so far (the model runs only those after them)

    def __len__(self) -> int:
        return len(self.layers[0])

    def keep_last(self, n: int) -> None:
        for layer in self.layers:
            layer.keep_last(n)


def causal_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    n_heads: int,
    rotary: Rotary,
    cache: LayerCache | None = None,
) -> torch.Tensor:
    """softmax(QKᵀ/sqrt(d_head))·V over heads, causal, with rotary positions. (B, T, d) → (B, T, d).

    With a cache, the T tokens come after the cached ones: they attend to those and to each other."""
    batch, seq_len, d_model = q.shape
    # (B, T, d) → (B, heads, T, d_head)
    q, k, v = (t.view(batch, seq_len, n_heads, d_model // n_heads).transpose(1, 2) for t in (q, k, v))
    start, past = (cache.position, len(cache)) if cache is not None else (0, 0)
    q, k = rotary(q, start), rotary(k, start)
    if cache is not None:
        k, v = cache.add(k, v)  # (B, heads, past + T, d_head)
    mask = None
    if past and seq_len > 1:  # new token i sees the cache and new tokens up to i
        mask = torch.ones(seq_len, past + seq_len, dtype=torch.bool, device=q.device).tril(past)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=past == 0)  # (B, heads, T, d_head)
    return y.transpose(1, 2).reshape(batch, seq_len, d_model)  # (B, T, d)


class CausalLM(nn.Module):
    """Token embedding → blocks → final LayerNorm → logits through the tied embedding.

    Subclasses fill `self.blocks`; each block is called as `block(x, rotary, layer_cache)`.
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.rotary = Rotary(config.d_model // config.n_heads, config.rotary_pct, config.seq_len)
        self.blocks = nn.ModuleList()
        self.final_norm = nn.LayerNorm(config.d_model)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, cache: KVCache | None = None):
        """Logits (and the loss with targets). With `cache`, idx are the tokens after the cached ones."""
        x = self.embedding(idx)  # (B, T) → (B, T, d)
        for i, block in enumerate(self.blocks):
            x = block(x, self.rotary, None if cache is None else cache.layers[i])  # (B, T, d)
        x = self.final_norm(x)
        if targets is None:
            return F.linear(x, self.embedding.weight), None  # (B, T, V)
        return linear_cross_entropy(x, self.embedding.weight, targets)  # (B, T, V), the mean loss

    def get_num_params(self, non_embedding: bool = False) -> int:
        """Parameters counted once (the output head is tied to the embedding)."""
        total = sum(p.numel() for p in self.parameters())
        return total - self.embedding.weight.numel() if non_embedding else total

    def new_cache(self) -> KVCache:
        return KVCache(len(self.blocks))

    def next_token_logits(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """The logits after idx (batch, vocab). Without a cache: the last seq_len tokens, run again. With
        one: only the tokens it has not seen; past seq_len tokens it keeps the most recent seq_len - 1
        (a sliding window: within the first seq_len tokens the logits are the uncached ones)."""
        if cache is None:
            logits, _ = self(idx[:, -self.config.seq_len :])
            return logits[:, -1, :]
        new = idx[:, cache.seen :] if cache.seen else idx[:, -self.config.seq_len :]
        new = new[:, -self.config.seq_len :]
        overflow = len(cache) + new.shape[1] - self.config.seq_len
        if overflow > 0:
            cache.keep_last(max(0, len(cache) - overflow))
        logits, _ = self(new, cache=cache)
        cache.seen = idx.shape[1]
        return logits[:, -1, :]

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """idx followed by max_new_tokens sampled tokens. Pass `cache` (new_cache(), kept across calls
        that continue the same sequence) to run each new token only; without one, every step runs the
        whole context again (the plain reference path)."""
        for _ in range(max_new_tokens):
            logits = self.next_token_logits(idx, cache) / max(temperature, 1e-5)
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
                logits[logits < kth] = -float("inf")
            probs = F.softmax(logits, dim=-1)
            idx = torch.cat((idx, torch.multinomial(probs, 1, generator=generator)), dim=1)
        return idx
