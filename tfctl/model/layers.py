"""What both model families share: rotary embeddings, causal attention, the LM shell around the blocks."""

import torch
import torch.nn.functional as F
from torch import nn

from tfctl.model.loss import linear_cross_entropy


def layer_norm(x: torch.Tensor) -> torch.Tensor:
    """The non-parametric LayerNorm of the Tokenformer block (no weight, no bias)."""
    return F.layer_norm(x, (x.shape[-1],))


class Rotary(nn.Module):
    """GPT-NeoX rotary embeddings on the first `rotary_pct` of each head's dims.

    The rotated dims are two halves (x1, x2) turned by the angle of each position:
    (x1·cos - x2·sin, x2·cos + x1·sin); the other dims pass through (`Rotate`).
    """

    def __init__(self, head_dim: int, rotary_pct: float, seq_len: int, base: float = 10000.0):
        super().__init__()
        self.rot_dim = int(head_dim * rotary_pct) // 2 * 2
        inv_freq = 1.0 / base ** (
            torch.arange(0, self.rot_dim, 2, dtype=torch.float32) / max(self.rot_dim, 1)
        )
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self._cache_len = 0
        self._extend(seq_len)

    def _extend(self, seq_len: int) -> None:
        positions = torch.arange(seq_len, dtype=torch.float32, device=self.inv_freq.device)
        angles = torch.outer(positions, self.inv_freq)  # (seq, rot_dim / 2)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)
        self._cache_len = seq_len

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, heads, seq, head_dim) → same shape with positions rotated in."""
        if self.rot_dim == 0:
            return x
        seq_len = x.shape[-2]
        if seq_len > self._cache_len or self.cos.device != x.device:
            self._extend(max(seq_len, self._cache_len))
        return Rotate.apply(x, self.cos[:seq_len].to(x.dtype), self.sin[:seq_len].to(x.dtype))


def _rotate_(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Turns the first 2·half dims of x in place by the angles (cos, sin of shape (seq, half)); returns x."""
    half = cos.shape[-1]
    x1, x2 = x[..., :half], x[..., half : 2 * half]
    x1_before = x1.clone()
    x1.mul_(cos).addcmul_(x2, sin, value=-1)
    x2.mul_(cos).addcmul_(x1_before, sin)
    return x


class Rotate(torch.autograd.Function):
    """The rotation as one copy plus in-place updates of the rotated dims (a quarter of them at rotary_pct
    0.25); backward turns the gradient back by the same angles. Autograd's split/mul/cat chain took a
    full-size concatenation forward and a zero-filled full-size gradient backward per call."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(cos, sin)
        return _rotate_(x.clone(), cos, sin)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        cos, sin = ctx.saved_tensors
        return _rotate_(grad.clone(), cos, -sin), None, None


def causal_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_heads: int, rotary: Rotary
) -> torch.Tensor:
    """softmax(QKᵀ/sqrt(d_head))·V over heads, causal, with rotary positions. (B, T, d) → (B, T, d)."""
    batch, seq_len, d_model = q.shape
    q, k, v = (t.view(batch, seq_len, n_heads, d_model // n_heads).transpose(1, 2) for t in (q, k, v))
    q, k = rotary(q), rotary(k)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return y.transpose(1, 2).reshape(batch, seq_len, d_model)


class CausalLM(nn.Module):
    """Token embedding → blocks → final LayerNorm → logits through the tied embedding.

    Subclasses fill `self.blocks`; each block is called as `block(x, rotary)`.
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.rotary = Rotary(config.d_model // config.n_heads, config.rotary_pct, config.seq_len)
        self.blocks = nn.ModuleList()
        self.final_norm = nn.LayerNorm(config.d_model)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        x = self.embedding(idx)
        for block in self.blocks:
            x = block(x, self.rotary)
        if targets is None:
            return F.linear(self.final_norm(x), self.embedding.weight), None
        return linear_cross_entropy(self.final_norm(x), self.embedding.weight, targets)

    def get_num_params(self, non_embedding: bool = False) -> int:
        """Parameters counted once (the output head is tied to the embedding)."""
        total = sum(p.numel() for p in self.parameters())
        return total - self.embedding.weight.numel() if non_embedding else total

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token (forward + backward), nanoGPT-style: 6·N_matmul + attention."""
        from tfctl.model.flops import training_flops_per_token

        return training_flops_per_token(self.config, seq_len)

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        for _ in range(max_new_tokens):
            context = idx[:, -self.config.seq_len :]
            logits, _ = self(context)
            logits = logits[:, -1, :] / max(temperature, 1e-5)
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
                logits[logits < kth] = -float("inf")
            probs = F.softmax(logits, dim=-1)
            idx = torch.cat((idx, torch.multinomial(probs, 1, generator=generator)), dim=1)
        return idx
