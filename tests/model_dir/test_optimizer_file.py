"""optimizer.safetensors: the AdamW moments a model directory carries."""

import pytest
import torch

from tfctl.errors import UserError
from tfctl.model_dir.optimizer_file import load_moments_file, save_moments_file


def test_moments_file_round_trip(tmp_path):
    moments = {"a.exp_avg": torch.randn(3, 4), "a.exp_avg_sq": torch.rand(3, 4)}
    save_moments_file(moments, 42, tmp_path / "optimizer.safetensors")
    loaded, step = load_moments_file(tmp_path)  # a directory means its optimizer.safetensors
    assert step == 42 and all(torch.equal(loaded[k], moments[k]) for k in moments)
    with pytest.raises(UserError, match="unreadable optimizer state"):
        load_moments_file(tmp_path / "missing.safetensors")
