"""Net2Net growth of the baseline Transformer: the classic way to grow a Transformer, for `tfctl compare`.

Wider MLP (Net2WiderNet, Chen et al. 2016): hidden unit j of the wider MLP copies the up-projection row of
an old unit g(j) (g is the identity on old units, a random old unit for each new one), and each old unit's
down-projection column is split among its c copies so that they sum to the original. GeLU acts per unit, so
the copies compute the same activation and the MLP computes exactly the same function.

Symmetry: copies with identical incoming rows and proportional outgoing columns would get proportional
gradients, and Adam (scale-invariant) would keep them identical forever. So the split is uneven *per
element*: copy j gets `column ⊙ r_j` with random ratios r_j that still sum to 1 over the copies. The function
is preserved exactly (up to fp32 rounding), and the copies drift apart from the first step.

Deeper (Net2DeeperNet in the residual form): new blocks go on top, freshly initialised, with their two
residual-branch output projections (`attention.output`, `mlp.down`) at zero, so each is the identity.

Pure torch on configs and state dicts; only `net2net_model_dir` touches files.
"""

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path

import torch

from tfctl.growth.depth import layer_sources, source_name
from tfctl.growth.verify import PRESERVE_TOLERANCE, verify_growth
from tfctl.model import TransformerConfig, build_model
from tfctl.model_dir.config import TOKENIZER, load_model_config
from tfctl.model_dir.weights import load_state_dict, save_model_dir

SPLIT_NOISE = 0.1  # std of a copy's split ratio, relative to the even share 1/c
ZEROED = (".attention.output.weight", ".mlp.down.weight")


def net2wider(
    up: torch.Tensor,
    down: torch.Tensor,
    hidden: int,
    generator: torch.Generator | None = None,
    split_noise: float = SPLIT_NOISE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Widen one MLP: up (h, d) and down (d, h) → (hidden, d) and (d, hidden), the same function."""
    old = up.shape[0]
    if hidden < old:
        raise ValueError(f"cannot narrow an MLP from {old} to {hidden} hidden units")
    mapping = torch.cat([torch.arange(old), torch.randint(0, old, (hidden - old,), generator=generator)])
    copies = torch.bincount(mapping, minlength=old).to(down.dtype)  # c_k: how many units copy old unit k
    share = 1.0 / copies[mapping]  # (hidden,) the even share of every new unit
    noise = torch.randn(down.shape[0], hidden, generator=generator, dtype=down.dtype) * share * split_noise
    # make the noise sum to zero over each old unit's copies, element by element
    noise_sum = torch.zeros(down.shape[0], old, dtype=down.dtype).index_add_(1, mapping, noise)
    ratios = share + noise - noise_sum[:, mapping] * share
    return up[mapping].clone(), down[:, mapping] * ratios


def widen(
    config: TransformerConfig,
    state_dict: Mapping[str, torch.Tensor],
    ffn_hidden: int,
    layers: int | None = None,
    seed: int = 0,
    split_noise: float = SPLIT_NOISE,
) -> tuple[TransformerConfig, dict[str, torch.Tensor]]:
    """The Transformer with `ffn_hidden` MLP units (and `layers` blocks), computing the same function."""
    if not isinstance(config, TransformerConfig):
        raise ValueError(f"Net2Net grows a baseline Transformer, not a {config.family}")
    layers = layers or config.n_layers
    new_config = dataclasses.replace(config, ffn_hidden=ffn_hidden, n_layers=layers)
    generator = torch.Generator().manual_seed(seed)
    sources = layer_sources(config.n_layers, layers, "append")
    fresh = build_model(new_config, device="meta").state_dict()
    out: dict[str, torch.Tensor] = {}
    for name, meta in fresh.items():
        old_name = source_name(name, sources)
        if old_name is None:  # a new block: N(0, 0.02) like a fresh one, the identity on the residual stream
            zeroed = name.endswith(ZEROED)
            out[name] = (
                torch.zeros(meta.shape) if zeroed else torch.randn(meta.shape, generator=generator) * 0.02
            )
        elif name.endswith(".mlp.up.weight"):
            prefix = old_name.removesuffix("up.weight")
            out[name], out[name.removesuffix("up.weight") + "down.weight"] = net2wider(
                state_dict[old_name].float(),
                state_dict[prefix + "down.weight"].float(),
                ffn_hidden,
                generator,
                split_noise,
            )
        elif name not in out:
            out[name] = state_dict[old_name].float().clone()
    return new_config, out


def net2net_model_dir(
    source: str | Path,
    out: str | Path,
    ffn_hidden: int,
    layers: int | None = None,
    seed: int = 0,
    probe: torch.Tensor | None = None,
    split_noise: float = SPLIT_NOISE,
):
    """Widen (and deepen) the Transformer model directory `source` into `out`; verify, return the report."""
    start = time.perf_counter()
    source = Path(source)
    config = load_model_config(source)
    state = load_state_dict(source)
    new_config, new_state = widen(config, state, ffn_hidden, layers, seed, split_noise)
    report = verify_growth(config, state, new_config, new_state, probe)
    if not report.max_abs_logit_diff <= PRESERVE_TOLERANCE:
        raise RuntimeError(
            f"Net2Net widening moved the logits by {report.max_abs_logit_diff:.3g} "
            f"(> {PRESERVE_TOLERANCE}): this is a bug in tfctl.growth.net2net"
        )
    report = dataclasses.replace(
        report, seconds=time.perf_counter() - start, init="net2net", verify_seconds=report.seconds
    )
    tokenizer = source / TOKENIZER if (source / TOKENIZER).is_file() else None
    save_model_dir(
        new_state,
        new_config,
        out,
        tokenizer=tokenizer,
        extra={
            "growth": {
                "source": str(source),
                "ffn_hidden": ffn_hidden,
                "layers": new_config.n_layers,
                "seed": seed,
                "split_noise": split_noise,
                **report.to_dict(),
            }
        },
    )
    return report
