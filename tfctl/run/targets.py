"""Which model a command that uses one means (the one MODEL|RUN resolver): a model directory as is, or a run
directory's latest export, with the data and eval settings it was trained with, and what a model card says
of its run. Plain Python (no torch): `tfctl eval` and `generate`
refuse a wrong path or option in a moment, before any weights are loaded (`eval_generate.py` does that)."""

import json
import math
from dataclasses import dataclass
from pathlib import Path

from tfctl.errors import UserError
from tfctl.model_dir.config import TOKENIZER, is_model_dir
from tfctl.run.layout import RunDir
from tfctl.run.state import RunState
from tfctl.stage.spec import StageSpec

MAX_NEW_TOKENS = 20_000  # beyond this, sampling on a CPU takes hours: a typo


@dataclass
class ModelTarget:
    """A model directory, and (when it came from a run) the data and eval settings it was trained with."""

    model_dir: Path
    data_dir: Path | None = None
    eval_batches: int = 8
    eval_batch_size: int = 8


def read_export_info(model_dir: Path) -> dict:
    """A model directory's export.json (provenance, eval settings): {} when missing; damaged is a UserError."""
    export = model_dir / "export.json"
    if not export.is_file():
        return {}
    try:
        info = json.loads(export.read_bytes())
    except (OSError, ValueError) as error:
        raise UserError(f"{export}: unreadable ({error}); delete it to use the model without it") from None
    if not isinstance(info, dict):
        raise UserError(f"{export}: not a JSON object; delete it to use the model without it")
    return info


def latest_model(run_dir: Path) -> tuple[str, Path]:
    """(stage, final model dir) of the last finished stage of a run directory."""
    dirs = RunDir(run_dir)
    finished = RunState.load(dirs.state, run_dir.name).finished()
    if not finished:
        raise UserError(f"{run_dir}: no finished stage yet (run `tfctl train` first)")
    return finished[-1], dirs.final(finished[-1])


def model_dir_of(path: str | Path) -> Path:
    """The model directory a MODEL|RUN argument names: a model directory as is, a run directory's last finished
    stage's final model. Reads nothing of the model's settings (`resolve_target` adds them)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such model or run directory")
    if RunDir(path).is_run():
        return latest_model(path)[1]
    if is_model_dir(path):
        return path
    raise UserError(
        f"{path}: neither a model directory (model.safetensors + config.json) nor a run directory "
        "(state.json)"
    )


def source_run(path: Path, model_dir: Path) -> Path | None:
    """The run a model came from: the path itself, or the run holding stages/<s>/final."""
    for candidate in (path, model_dir.parent.parent.parent):
        if RunDir(candidate).is_run():
            return candidate
    return None


def run_summary(path: str | Path, model_dir: Path) -> dict | None:
    """What a model card says of the run a model came from (None: not from a run): its name, every stage's
    status and result, the finished ones in order, the resolved recipe's text."""
    run = source_run(Path(path), model_dir)
    if run is None:
        return None
    state = RunState.load(RunDir(run).state, run.name)
    recipe = RunDir(run).recipe
    return {
        "name": run.name,
        "stages": state.stages(),
        "finished": state.finished(),
        "recipe": recipe.read_text() if recipe.is_file() else None,
    }


def _from_spec(model_dir: Path, spec_path: Path) -> ModelTarget:
    spec = StageSpec.load(spec_path)
    return ModelTarget(model_dir, Path(spec.data_dir), spec.train.eval_batches, spec.train.eval_batch_size)


def resolve_target(path: str | Path | ModelTarget) -> ModelTarget:
    """A model directory as is, or a run directory's latest export with that stage's eval settings. A model
    directory inside a run (RUN/stages/<stage>/final or init) gets its stage's data and eval settings.
    A ModelTarget (already resolved) is returned as it is."""
    if isinstance(path, ModelTarget):
        return path
    path = Path(path)
    model_dir = model_dir_of(path)
    if model_dir != path:  # a run directory: its latest stage's final/ and that stage's spec
        return _from_spec(model_dir, model_dir.parent / "spec.json")
    info = read_export_info(path)
    target = ModelTarget(path)
    if (path.parent / "spec.json").is_file():  # a stage's final/ or init/
        target = _from_spec(path, path.parent / "spec.json")
    if isinstance(info.get("data_dir"), str) and info["data_dir"]:
        target.data_dir = Path(info["data_dir"])
    for key in ("eval_batches", "eval_batch_size"):
        value = info.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            setattr(target, key, value)
    return target


def generation_target(
    path: str | Path | ModelTarget, max_new_tokens: int, seed: int, temperature: float
) -> ModelTarget:
    """The model `tfctl generate` samples from, once its options and its tokenizer are known to be usable."""
    if not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise UserError(f"--max-new-tokens {max_new_tokens}: must be from 1 to {MAX_NEW_TOKENS:,}")
    if not 0 <= seed < 2**63:
        raise UserError(f"--seed {seed}: must be from 0 to 2^63 - 1")
    if not math.isfinite(temperature) or temperature < 0:
        raise UserError(f"--temperature {temperature}: must be a finite number >= 0")
    target = resolve_target(path)
    if not (target.model_dir / TOKENIZER).is_file():
        raise UserError(f"{target.model_dir}: has no {TOKENIZER}; cannot encode a prompt")
    return target
