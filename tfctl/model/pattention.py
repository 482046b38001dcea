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

# Keeps a row of all-zero scores finite: ‖A‖₂ is clamped below at sqrt(EPS).
EPS = 1e-12


class L2NormGelu(torch.autograd.Function):
    """GeLU(A · τ / ‖A‖₂) over the last dim, with a hand-written backward.

    Autograd's version of the three-op chain saves A, A², the scaled scores and takes ~8 passes over the
    score tensor backward. This one saves only the scaled scores S = A·c (c = τ/‖A‖₂ per row) and takes
    4 passes backward (GeLU', one dot product per row, one fused update, the scale). Where ‖A‖₂ is not
    clamped, ‖S‖₂ = τ, so with G = dL/dS = g ⊙ GeLU'(S):

        dL/dA = c · (G - A · (G·A) / ‖A‖₂²) = c · (G - S · (G·S) / τ²)

    (the second term is zero where ‖A‖₂² is clamped at EPS: c is then a constant).
    """

    @staticmethod
    def forward(ctx, scores: torch.Tensor, tau: float) -> torch.Tensor:
        squared_norm = torch.linalg.vector_norm(scores, dim=-1, keepdim=True).square_()
        scale = squared_norm.clamp_min(EPS).rsqrt_().mul_(tau)
        scaled = scores * scale
        ctx.save_for_backward(scaled, scale, squared_norm >= EPS)
        ctx.tau = tau
        return F.gelu(scaled)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        scaled, scale, unclamped = ctx.saved_tensors
        grad_scaled = torch.ops.aten.gelu_backward(grad, scaled)
        row_dot = torch.linalg.vecdot(grad_scaled, scaled).unsqueeze(-1).div_(ctx.tau**2).mul_(unclamped)
        return grad_scaled.addcmul_(scaled, row_dot, value=-1).mul_(scale), None


def theta(scores: torch.Tensor, norm: str, tau: float) -> torch.Tensor:
    """Θ of the official code, over the last dim (the parameter tokens)."""
    if norm == "l2_norm_gelu":
        return L2NormGelu.apply(scores, tau)
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
        scores = x @ self.key_tokens.t()
        return theta(scores, self.norm, self.tau) @ self.value_tokens

    def extra_repr(self) -> str:
        tau = "sqrt(n)" if self.scale is None else f"{self.scale:.4g}"
        return (
            f"in={self.in_features}, out={self.out_features}, tokens={self.num_tokens}, "
            f"norm={self.norm}, tau={tau}"
        )


def pattention_same_input(layers: list[Pattention], x: torch.Tensor) -> list[torch.Tensor]:
    """`[layer(x) for layer in layers]`, faster: one score matmul for all of them.

    Q, K and V of a Tokenformer block read the same x. Concatenating their key tokens turns three thin
    matmuls into one wide one, and Θ runs once over a (..., layers, n) view (it normalises over the last
    dim, so each layer's scores are still normalised on their own). Each value matmul then reads its
    slice of that view in place; `unbind` makes the backward one copy into the score gradient (indexing
    would zero-fill a full-size gradient per layer). Same math; falls back to one call per layer when the layers differ in
    token count, norm or τ (they never do in a Tokenformer block, but a hand-edited model might).
    """
    first = layers[0]
    if any((m.num_tokens, m.norm, m.tau) != (first.num_tokens, first.norm, first.tau) for m in layers):
        return [m(x) for m in layers]
    keys = torch.cat([m.key_tokens for m in layers])  # (layers·n, d_in): a copy of weights, not activations
    scores = (x @ keys.t()).unflatten(-1, (len(layers), first.num_tokens))
    weights = theta(scores, first.norm, first.tau).unbind(-2)
    return [w @ m.value_tokens for w, m in zip(weights, layers, strict=True)]
