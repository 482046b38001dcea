"""Which model directory a command-line MODEL|RUN argument names (no stage spec needed)."""

from pathlib import Path

from tfctl.errors import UserError
from tfctl.model_dir_config import is_model_dir
from tfctl.run.layout import RunDir
from tfctl.run.targets import latest_model


def model_dir_of(path: str | Path) -> Path:
    """A model directory as is; a run directory → its last finished stage's final model."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such model or run directory")
    if RunDir(path).is_run():
        return latest_model(path)[1]
    if is_model_dir(path):
        return path
    raise UserError(
        f"{path}: neither a model directory (model.safetensors + config.json) nor a run directory (state.json)"
    )
