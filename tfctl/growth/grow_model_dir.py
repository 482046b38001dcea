"""`grow_model_dir`: a model directory in, a grown and verified model directory out.

The edge of the growth package: reads and writes files, turns the user's mistakes into UserError.
"""

import dataclasses
import math
import shutil
import time
from pathlib import Path

import torch

from tfctl.errors import UserError
from tfctl.growth.depth import PLACEMENTS, layer_sources
from tfctl.growth.optimizer import flatten_moments, grow_optimizer_state, unflatten_moments
from tfctl.growth.state_dict import grow
from tfctl.growth.target import target_config
from tfctl.growth.tokens import POLICIES
from tfctl.growth.verify import PRESERVE_TOLERANCE, GrowthReport, verify_growth
from tfctl.model import TokenformerConfig
from tfctl.model_dir import TOKENIZER, load_model_config, load_state_dict, save_model_dir

OPTIMIZER_CHOICES = ("reset", "carry")


def _check_choice(option: str, value: str, choices: tuple) -> None:
    if value not in choices:
        raise UserError(f"{option} must be one of {', '.join(choices)}, got {value!r}")


def grow_model_dir(
    source: str | Path,
    out: str | Path,
    to: str | int | TokenformerConfig,
    layers: int | None = None,
    init: str = "preserve",
    optimizer: str = "reset",
    seed: int = 0,
    probe: torch.Tensor | None = None,
    placement: str = "append",
) -> GrowthReport:
    """Grow the model directory `source` to `to` (see `target_config`) and write it to `out`.

    Verifies on `probe` (default: a fixed short batch) and refuses to write a `preserve` growth that moved
    the logits. `optimizer="carry"` also grows `optimizer.safetensors`; "reset" leaves it behind.
    The report's `seconds` cover load + grow + verify; `out/export.json` keeps the report.
    """
    start = time.perf_counter()
    source, out = Path(source), Path(out)
    _check_choice("--init", init, POLICIES)
    _check_choice("--optimizer", optimizer, OPTIMIZER_CHOICES)
    _check_choice("--placement", placement, PLACEMENTS)
    config = load_model_config(source)
    if not isinstance(config, TokenformerConfig):
        raise UserError(
            f"{source}: a baseline {config.family} model; growth appends parameter tokens, "
            "which only a Tokenformer has"
        )
    if out.exists():
        raise UserError(f"{out}: already exists; choose another -o or remove it")
    from tfctl.worker.optimizer import OPTIMIZER_FILE, load_moments_file, save_moments_file

    if optimizer == "carry" and not (source / OPTIMIZER_FILE).is_file():
        raise UserError(f"{source}: --optimizer carry needs {OPTIMIZER_FILE}, which this directory lacks")
    try:
        target = target_config(config, to, layers)
    except ValueError as error:
        raise UserError(f"--to {to}: {error}") from None

    state = load_state_dict(source)
    try:
        new_config, new_state = grow(config, state, target, init=init, seed=seed, placement=placement)
    except ValueError as error:
        raise UserError(f"{source}: {error}") from None
    report = verify_growth(config, state, new_config, new_state, probe)
    if not math.isfinite(report.loss_before):
        raise UserError(
            f"{source}: the model's loss is not finite ({report.loss_before}); it cannot be grown"
        )
    if init == "preserve" and not report.max_abs_logit_diff <= PRESERVE_TOLERANCE:
        raise RuntimeError(
            f"preserve growth moved the logits by {report.max_abs_logit_diff:.3g} "
            f"(> {PRESERVE_TOLERANCE}): this is a bug in tfctl.growth"
        )
    report = dataclasses.replace(
        report, seconds=time.perf_counter() - start, init=init, verify_seconds=report.seconds
    )
    del state

    provenance = {
        "source": str(source),
        "to": str(to),
        "layers": new_config.n_layers,
        "init": init,
        "placement": placement,
        "optimizer": optimizer,
        "seed": seed,
    }
    tokenizer = source / TOKENIZER if (source / TOKENIZER).is_file() else None
    shapes = {name: tuple(t.shape) for name, t in new_state.items()}
    save_model_dir(
        new_state, new_config, out, tokenizer=tokenizer, extra={"growth": {**provenance, **report.to_dict()}}
    )
    del new_state
    if optimizer == "carry":  # after the weights, so both big state dicts are never alive at once
        try:
            tensors, step = load_moments_file(source / OPTIMIZER_FILE)
            sources = layer_sources(config.n_layers, new_config.n_layers, placement)
            moments = grow_optimizer_state(unflatten_moments(tensors), shapes, sources)
            save_moments_file(flatten_moments(moments), step, out / OPTIMIZER_FILE)
        except BaseException:
            shutil.rmtree(out, ignore_errors=True)  # a grown directory is complete or absent
            raise
    return report
