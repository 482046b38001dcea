"""What a model directory is, before any of its weights are read: its file names and its `config.json`.

Plain Python (no torch), so the commands that take a model directory refuse a wrong one in a moment;
loading and writing the tensors is `weights.py`.
"""

import json
from pathlib import Path

from tfctl.errors import UserError
from tfctl.model import config_from_dict
from tfctl.outputs import OutputKind

WEIGHTS, CONFIG, TOKENIZER = "model.safetensors", "config.json", "tokenizer.json"
OPTIMIZER_FILE = "optimizer.safetensors"  # the AdamW moments beside the weights (optimizer_file.py)
COUNTS = (
    "vocab_size",
    "seq_len",
    "n_layers",
    "d_model",
    "n_heads",
    "qkv_tokens",
    "proj_tokens",
    "ffn_tokens",
)


def is_model_dir(path: str | Path) -> bool:
    path = Path(path)
    return (path / WEIGHTS).is_file() and (path / CONFIG).is_file()


def load_model_config(path: str | Path):
    """The config of a model directory, or a one-line UserError naming what is wrong."""

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such model directory")
    if not is_model_dir(path):
        raise UserError(f"{path}: not a model directory (expected {WEIGHTS} and {CONFIG})")
    try:
        config = config_from_dict(json.loads((path / CONFIG).read_text()))
    except (ValueError, TypeError) as error:
        raise UserError(f"{path / CONFIG}: {error}") from None
    for name in COUNTS:  # a model with 0 of something (0 parameter tokens: no layer at all) is no model
        value = getattr(config, name, 1)
        if not isinstance(value, int) or value < 1:
            raise UserError(f"{path / CONFIG}: {name} must be a whole number of at least 1, got {value!r}")
    return config


# a model directory as an output (tfctl.outputs): its files (a stage's final/ adds the worker's manifest.json,
# grow --optimizer carry optimizer.safetensors), and how an existing one is recognised as tfctl's
MODEL_OUTPUT = OutputKind(
    "model directory",
    (WEIGHTS, CONFIG, TOKENIZER, "export.json", OPTIMIZER_FILE, "manifest.json"),
    is_model_dir,
)
