"""`optimizer.safetensors`: a model directory's AdamW moments, the file a stage exports beside its weights,
growth carries to the grown model (`tfctl grow --optimizer carry`) and the next stage loads
(`spec.init_optimizer`).

The fp32 moments keyed "{param}.exp_avg" / "{param}.exp_avg_sq", with metadata {"step": str(n)}.
"""

from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from tfctl.errors import UserError
from tfctl.files import atomic_write
from tfctl.model_dir.config import OPTIMIZER_FILE

MOMENTS = ("exp_avg", "exp_avg_sq")


def load_moments_file(path: str | Path) -> tuple[dict[str, torch.Tensor], int]:
    """(tensors, step) of an `optimizer.safetensors` (or of a directory's); a one-line UserError when unreadable."""
    path = Path(path)
    if path.is_dir():
        path = path / OPTIMIZER_FILE
    try:
        with safe_open(str(path), framework="pt") as f:
            step = int((f.metadata() or {}).get("step", "0"))
            return {key: f.get_tensor(key) for key in f.keys()}, step
    except (SafetensorError, OSError, ValueError) as error:
        raise UserError(f"{path}: unreadable optimizer state ({error})") from None


def save_moments_file(moments: dict[str, torch.Tensor], step: int, out: str | Path) -> Path:
    tensors = {k: v.detach().float().contiguous().cpu() for k, v in moments.items()}
    return atomic_write(out, lambda tmp: save_file(tensors, str(tmp), metadata={"step": str(step)}))
