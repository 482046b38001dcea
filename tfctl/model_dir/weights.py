"""A model directory: `model.safetensors` + `config.json` (+ `tokenizer.json`), self-contained.

Its file names and config (no torch) are in `config.py`; the tensors are read and written here.

What a stage exports, what `tfctl grow` reads and writes, what `tfctl eval` and `generate` load.
Written to a temporary sibling and renamed into place, so a model directory is complete or absent.
Safetensors and JSON only: loading a model directory can never run code.
"""

import json
import math
import shutil
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from tfctl.errors import UserError
from tfctl.model import build_model, config_to_dict
from tfctl.model.layers import Rotary
from tfctl.model_dir.config import CONFIG, MODEL_OUTPUT, TOKENIZER, WEIGHTS, load_model_config
from tfctl.model_dir.safetensors_io import SafetensorsFormatError, map_tensors
from tfctl.outputs import output_writer


def load_state_dict(path: str | Path) -> dict:
    """The tensors of a model directory; unreadable or non-finite (NaN/inf) weights are a UserError."""
    try:
        state = load_file(str(Path(path) / WEIGHTS))
    except (SafetensorError, OSError) as error:
        raise UserError(f"{Path(path) / WEIGHTS}: unreadable weights ({error})") from None
    check_finite(state, path)
    return state


def check_finite(state: dict, path: str | Path) -> None:
    """Non-finite (NaN/inf) weights are the user's problem, named in one line, never a growth "bug"."""
    for name, tensor in state.items():
        # a NaN or inf makes any sum of the values non-finite, so a finite sum clears the tensor in one
        # reduction (no mask of its size); only a non-finite sum (or one that overflowed) looks at each value
        if not tensor.is_floating_point() or math.isfinite(tensor.sum().item()):
            continue
        if not bool(tensor.isfinite().all()):
            raise UserError(
                f"{Path(path) / WEIGHTS}: {name} holds non-finite values (NaN or inf); the model cannot be used"
            )


def map_state_dict(path: str | Path) -> dict:
    """The weights of a model directory as tensors over a memory map of its file: no copy, nothing read
    twice (what growth reads a source with)."""
    try:
        return map_tensors(Path(path) / WEIGHTS)
    except (SafetensorsFormatError, OSError) as error:
        raise UserError(f"{Path(path) / WEIGHTS}: unreadable weights ({error})") from None


def load_model(path: str | Path, device: str = "cpu"):
    """(model, config) from a model directory, weights checked against the config's shapes."""

    config = load_model_config(path)
    model = build_model(config, device="meta")
    state = load_state_dict(path)
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[-1].strip()
        raise UserError(f"{Path(path) / WEIGHTS}: weights do not match {CONFIG}: {first}") from None
    # the rotary tables are non-persistent buffers, still on meta: rebuild them for real
    model.rotary = Rotary(config.d_model // config.n_heads, config.rotary_pct, config.seq_len)
    return model.to(device), config


def model_dir_writer(out: str | Path):
    """A temporary directory beside `out` to write a model directory into; on success moved to `out`
    (tfctl.outputs.output_writer: complete or absent, the user's files never touched)."""
    return output_writer(out, MODEL_OUTPUT)


def write_model_files(
    directory: Path, config, tokenizer: str | Path | None = None, extra: dict | None = None
) -> None:
    """config.json, the tokenizer (copied from a file or a model directory) and `extra` as export.json."""
    (directory / CONFIG).write_text(json.dumps(config_to_dict(config), indent=2) + "\n")
    if tokenizer is not None:
        tokenizer = Path(tokenizer)
        shutil.copyfile(tokenizer / TOKENIZER if tokenizer.is_dir() else tokenizer, directory / TOKENIZER)
    if extra:
        (directory / "export.json").write_text(json.dumps(extra, indent=2) + "\n")


def save_model_dir(
    state_dict: dict, config, out: str | Path, tokenizer: str | Path | None = None, extra: dict | None = None
) -> Path:
    """Write a model directory atomically; `extra` goes to `export.json` (provenance, metrics)."""
    out = Path(out)
    with model_dir_writer(out) as tmp:
        tensors = {name: t.detach().contiguous().cpu() for name, t in state_dict.items()}
        save_file(tensors, str(tmp / WEIGHTS), metadata={"format": "pt"})
        write_model_files(tmp, config, tokenizer, extra)
    return out
