"""Pattention: input tokens attend to learnable key/value parameter tokens (TokenFormer, Eq. 5).

    Pattention(X) = Θ(X · K_Pᵀ) · V_P,   K_P: (n, d_in),  V_P: (n, d_out)

Θ normalises the scores of each input token over the n parameter tokens. The paper's default,
`l2_norm_gelu`, is GeLU(A · τ / ‖A‖₂) with τ = sqrt(n). Holding τ fixed while tokens are appended
(scale_mode "fixed") is what makes growth with zero new keys exactly function-preserving.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from tfctl.model import fast

# Keeps a row of all-zero scores finite: ‖A‖₂ is clamped below at sqrt(EPS).
EPS = 1e-12


def theta(scores: torch.Tensor, norm: str, tau: float) -> torch.Tensor:
    """Θ of the official code, over the last dim (the parameter tokens). (..., n) → (..., n)."""
    if norm == "l2_norm_gelu":  # GeLU(A · τ / ‖A‖₂)
        if fast.ENABLED:
            return fast.L2NormGelu.apply(scores, tau, EPS)
        inverse_norm = scores.pow(2).sum(-1, keepdim=True).clamp_min(EPS).rsqrt()  # (..., 1)
        return F.gelu(scores * (inverse_norm * tau))
    if norm == "gelu_l2_norm":
        activated = F.gelu(scores)
        inverse_norm = activated.pow(2).sum(-1, keepdim=True).clamp_min(EPS).rsqrt()
        return activated * (inverse_norm * tau)
    if norm == "softmax":  # exp(A) / ‖exp(A)‖₁ · n, with n = τ² so a fixed τ also fixes this factor
        return F.softmax(scores, dim=-1) * (tau * tau)
    raise ValueError(f"unknown Pattention norm {norm!r}")


class Pattention(nn.Module):
    """A drop-in replacement for `nn.Linear(in_features, out_features, bias=False)`."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_tokens: int,
        norm: str = "l2_norm_gelu",
        scale: float | None = None,
    ):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.norm = norm
        self.scale = scale  # None: τ = sqrt(num_tokens); a float: τ fixed at that value
        self.key_tokens = nn.Parameter(torch.empty(num_tokens, in_features))
        self.value_tokens = nn.Parameter(torch.empty(num_tokens, out_features))
        self.reset_parameters()

    @property
    def num_tokens(self) -> int:
        return self.key_tokens.shape[0]

    @property
    def tau(self) -> float:
        return self.scale if self.scale is not None else math.sqrt(self.num_tokens)

    def reset_parameters(self, key_std: float = 0.02, value_std: float = 0.02) -> None:
        nn.init.normal_(self.key_tokens, std=key_std)
        nn.init.normal_(self.value_tokens, std=value_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = (
            x @ self.key_tokens.t()
        )  # (..., d_in) @ (d_in, n) → (..., n): each input token against each key
        return theta(scores, self.norm, self.tau) @ self.value_tokens  # (..., n) @ (n, d_out) → (..., d_out)

    def extra_repr(self) -> str:
        tau = "sqrt(n)" if self.scale is None else f"{self.scale:.4g}"
        return (
            f"in={self.in_features}, out={self.out_features}, tokens={self.num_tokens}, "
            f"norm={self.norm}, tau={tau}"
        )


def pattention_same_input(layers: list[Pattention], x: torch.Tensor) -> list[torch.Tensor]:
    """`[layer(x) for layer in layers]` (the plain code, and what runs with the fast paths off), faster: one
    score matmul for all of them. (..., d_in) → a list of (..., d_out).

    Q, K and V of a Tokenformer block read the same x. Concatenating their key tokens turns three thin
    matmuls into one wide one, and Θ runs once over a (..., layers, n) view (it normalises over the last
    dim, so each layer's scores are still normalised on their own). Each value matmul then reads its
    slice of that view in place; `unbind` makes the backward one copy into the score gradient (indexing
    would zero-fill a full-size gradient per layer). Same math; falls back to one call per layer when the layers differ in
    token count, norm or τ (they never do in a Tokenformer block, but a hand-edited model might).
    """
    first = layers[0]
    if not fast.ENABLED or any(
        (m.num_tokens, m.norm, m.tau) != (first.num_tokens, first.norm, first.tau) for m in layers
    ):
        return [m(x) for m in layers]
    keys = torch.cat([m.key_tokens for m in layers])  # (layers·n, d_in): a copy of weights, not activations
    scores = (x @ keys.t()).unflatten(-1, (len(layers), first.num_tokens))  # (..., layers, n)
    weights = theta(scores, first.norm, first.tau).unbind(-2)  # layers × (..., n)
    return [w @ m.value_tokens for w, m in zip(weights, layers, strict=True)]
