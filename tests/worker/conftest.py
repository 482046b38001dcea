"""Fixtures of the training tests: a prepared tiny dataset and a tiny Tokenformer stage spec."""

from pathlib import Path

import pytest

from tfctl.data.settings import DEFAULT_SEED
from tfctl.recipe.schema import TrainSection
from tfctl.stage.spec import StageSpec


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Shakespeare with a 512-token BPE, prepared once (cached under $TFCTL_CACHE or ~/.cache/tfctl)."""
    from tfctl.data import DataSettings, prepare_dataset

    return prepare_dataset(DataSettings(source="shakespeare", tokenizer="bpe:512"), progress=False)


@pytest.fixture(scope="session")
def make_spec(data_dir):
    """Write `out_dir/spec.json` for a 12-step stage of a ~30k-parameter Tokenformer; returns its path.

    Overrides replace fields; the recipe's train settings (`zero_stage=2`) go to the spec's `train`
    section; `model=`, `schedule=` and `wandb=` dicts update those sections."""

    def make(out_dir: Path, **overrides) -> Path:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        values = dict(
            run_name="test",
            stage="s0",
            stage_index=0,
            data_dir=str(data_dir),
            out_dir=str(out_dir),
            metrics_path=str(out_dir / "metrics.jsonl"),
            steps=12,
            global_batch=8,
            seq_len=32,
            seed=DEFAULT_SEED,
            model=dict(
                family="tokenformer",
                vocab_size=512,
                seq_len=32,
                n_layers=2,
                d_model=32,
                n_heads=2,
                qkv_tokens=32,
                proj_tokens=32,
                ffn_tokens=64,
            ),
            schedule=dict(lr=3e-3, min_lr=3e-4, warmup_steps=2),
            train=dict(
                eval_interval=6,
                eval_batches=3,
                eval_batch_size=4,
                checkpoint_interval=6,
                keep_checkpoints=2,
                peak_flops=1e10,
            ),
            wandb=dict(mode="disabled", dir=str(out_dir)),
        )
        for key, value in overrides.items():
            if key in TrainSection.model_fields:
                values["train"][key] = value
            elif key in ("model", "schedule", "wandb"):
                values[key] = {**values[key], **value}
            else:
                values[key] = value
        StageSpec.from_dict(values).save(out_dir / "spec.json")
        return out_dir / "spec.json"

    return make
