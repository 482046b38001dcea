"""`compile: true` in a stage spec: the worker trains through torch.compile and still exports plain names."""

import json

import pytest
import torch
from safetensors import safe_open

from tfctl.launch import run_stage
from tfctl.model import build_model, config_from_dict
from tfctl.recipe.schema import LaunchSection, TrainSection
from tfctl.stage.schedule import CosineSchedule
from tfctl.stage.spec import StageSpec


@pytest.mark.slow  # DeepSpeed start-up + compiling: ~60 s CPU, 140 s wall on a loaded 2-core machine
def test_compiled_stage_exports_loadable_unprefixed_weights(tmp_path):
    from tfctl.data import DataSettings, prepare_dataset
    from tfctl.model_dir.weights import load_model

    data_dir = prepare_dataset(DataSettings(source="shakespeare", tokenizer="bpe:512"), progress=False)
    model = dict(
        family="tokenformer",
        vocab_size=512,
        seq_len=32,
        n_layers=1,
        d_model=32,
        n_heads=2,
        qkv_tokens=16,
        proj_tokens=16,
        ffn_tokens=32,
    )
    spec = StageSpec(
        run_name="test",
        stage="s0",
        stage_index=0,
        model=model,
        data_dir=str(data_dir),
        out_dir=str(tmp_path),
        metrics_path=str(tmp_path / "metrics.jsonl"),
        steps=3,
        global_batch=4,
        seq_len=32,
        schedule=CosineSchedule(lr=6e-4, min_lr=6e-5, warmup_steps=0, total=3),
        seed=1,
        train=TrainSection(
            compile=True,
            eval_interval=3,
            eval_batches=1,
            eval_batch_size=4,
            checkpoint_interval=3,
            peak_flops=1e10,
        ),
    )
    spec.wandb.mode = "disabled"
    spec.save(tmp_path / "spec.json")
    env = {"WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    code = run_stage(
        tmp_path / "spec.json", LaunchSection(), env=env, log_path=tmp_path / "worker.log", timeout=300
    )
    assert code == 0, (tmp_path / "worker.log").read_text()[-3000:]

    with safe_open(tmp_path / "final" / "model.safetensors", "pt") as weights:
        names = set(weights.keys())
    assert names == set(build_model(config_from_dict(model)).state_dict())  # no `_orig_mod.` anywhere
    loaded, _ = load_model(tmp_path / "final")
    losses = [
        json.loads(line)["loss"]
        for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["kind"] == "train"
    ]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    assert loaded.blocks[0].attention.query.key_tokens.shape == (16, 32)
