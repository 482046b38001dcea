"""The pure parts of the worker: LR schedule, batch geometry, DeepSpeed config, decay groups, moments file."""

import math
import subprocess
import sys

import pytest
import torch

from tfctl.errors import UserError
from tfctl.model import TokenformerConfig, build_model
from tfctl.model_dir.optimizer_file import load_moments_file, save_moments_file
from tfctl.recipe.schema import TrainSection
from tfctl.stage.schedule import CosineSchedule
from tfctl.stage.spec import StageSpec
from tfctl.worker.ds_config import BatchGeometry, build_ds_config
from tfctl.worker.optimizer import EagerAdamW, param_groups


def spec(**overrides) -> StageSpec:
    values = dict(
        run_name="r",
        stage="s",
        stage_index=0,
        model={},
        data_dir="d",
        out_dir="o",
        metrics_path="m",
        steps=100,
        global_batch=32,
        seq_len=16,
        schedule=CosineSchedule(lr=6e-4, min_lr=6e-5, warmup_steps=0, total=100),
        seed=1,
    )
    return StageSpec(**{**values, **overrides})


def test_schedule_warms_up_linearly_then_decays_to_min_lr():
    schedule = CosineSchedule(lr=1.0, min_lr=0.1, warmup_steps=10, total=110)
    assert [schedule(s) for s in (1, 5, 10)] == pytest.approx([0.1, 0.5, 1.0])
    assert schedule(11) == pytest.approx(1.0)
    assert schedule(60) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 49 / 99)))
    assert schedule(110) == pytest.approx(0.1)
    assert all(schedule(s) >= schedule(s + 1) for s in range(10, 110))


def test_schedule_restarts_per_stage_or_continues():
    # a spec without `total` (written by hand, or by tfctl before the schedule had one shape) restarts
    values = spec(steps=50).to_dict()
    values["schedule"] = {"lr": 1.0, "min_lr": 0.0, "warmup_steps": 5, "offset": 0, "total": None}
    restarted = StageSpec.from_dict(values).schedule
    assert restarted.total == 50
    assert restarted(1) == pytest.approx(0.2) and restarted(50) == pytest.approx(0.0)
    whole = CosineSchedule(lr=1.0, min_lr=0.0, warmup_steps=5, total=150)
    second = CosineSchedule(lr=1.0, min_lr=0.0, warmup_steps=5, total=150, offset=50)
    assert [second(s) for s in (1, 40, 100)] == pytest.approx([whole(51), whole(90), whole(150)])


@pytest.mark.parametrize(
    "global_batch,world,micro,expected",
    [
        (32, 1, None, (32, 1)),
        (32, 2, None, (16, 1)),
        (32, 2, 4, (4, 4)),
        (32, 4, 8, (8, 1)),
        (24, 3, 2, (2, 4)),
    ],
)
def test_batch_geometry_keeps_the_global_batch(global_batch, world, micro, expected):
    geometry = BatchGeometry.resolve(global_batch, world, micro)
    assert (geometry.micro_batch, geometry.accumulation) == expected
    assert geometry.micro_batch * geometry.accumulation * world == global_batch


@pytest.mark.parametrize(
    "global_batch,world,micro,field", [(32, 3, None, "global_batch"), (32, 2, 5, "micro_batch")]
)
def test_batch_geometry_rejects_what_does_not_divide(global_batch, world, micro, field):
    with pytest.raises(UserError, match=field):
        BatchGeometry.resolve(global_batch, world, micro)


def test_ds_config_from_spec():
    config = build_ds_config(
        spec(train=TrainSection(zero_stage=2, precision="bf16", grad_clip=0.5)),
        BatchGeometry.resolve(32, 2, 4),
    )
    assert (
        config["train_batch_size"],
        config["train_micro_batch_size_per_gpu"],
        config["gradient_accumulation_steps"],
    ) == (32, 4, 4)
    assert config["zero_optimization"]["stage"] == 2 and config["gradient_clipping"] == 0.5
    assert config["bf16"]["enabled"] and not config["fp16"]["enabled"]
    assert "optimizer" not in config  # a client optimizer: torch AdamW on CPU, FusedAdam on GPU


@pytest.mark.parametrize("train", [{"precision": "fp8"}, {"zero_stage": 4}])
def test_a_spec_with_unknown_train_settings_is_refused(train):
    values = spec().to_dict()
    values["train"].update(train)
    with pytest.raises(ValueError, match=next(iter(train))):
        StageSpec.from_dict(values)


def test_spec_json_round_trip():
    original = spec(train=TrainSection(zero_stage=2, betas=(0.8, 0.9)))
    assert StageSpec.from_dict(original.to_dict()) == original


def test_pattention_tokens_decay_embedding_and_norms_do_not():
    model = build_model(
        TokenformerConfig(
            vocab_size=64,
            seq_len=8,
            n_layers=1,
            d_model=16,
            n_heads=2,
            qkv_tokens=4,
            proj_tokens=4,
            ffn_tokens=8,
        )
    )
    decay, no_decay = param_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert {names[id(p)] for p in no_decay["params"]} == {
        "embedding.weight",
        "final_norm.weight",
        "final_norm.bias",
    }
    assert {names[id(p)].rsplit(".", 1)[-1] for p in decay["params"]} == {"key_tokens", "value_tokens"}
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_moments_file_round_trip(tmp_path):
    moments = {"a.exp_avg": torch.randn(3, 4), "a.exp_avg_sq": torch.rand(3, 4)}
    save_moments_file(moments, 42, tmp_path / "optimizer.safetensors")
    loaded, step = load_moments_file(tmp_path)  # a directory means its optimizer.safetensors
    assert step == 42 and all(torch.equal(loaded[k], moments[k]) for k in moments)
    with pytest.raises(UserError, match="unreadable optimizer state"):
        load_moments_file(tmp_path / "missing.safetensors")


def _trained(optimizer_class, steps: int = 5, resume_at: int = 3):
    """(weights, optimizer state) after `steps` AdamW steps, the optimizer rebuilt from its state dict
    at `resume_at`, as a resumed stage does."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.LayerNorm(16), torch.nn.Linear(16, 4))
    groups = [
        {"params": [model[0].weight, model[2].weight], "weight_decay": 0.1},
        {"params": [model[0].bias, model[1].weight, model[1].bias, model[2].bias], "weight_decay": 0.0},
    ]
    optimizer = optimizer_class(groups, lr=3e-3, betas=(0.9, 0.95), eps=1e-8)
    data = torch.randn(steps, 32, 8)
    for step in range(steps):
        if step == resume_at:
            state = optimizer.state_dict()
            optimizer = optimizer_class(groups, lr=3e-3, betas=(0.9, 0.95), eps=1e-8)
            optimizer.load_state_dict(state)
        optimizer.zero_grad()
        model(data[step]).square().mean().backward()
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()], optimizer.state_dict()


def test_eager_adamw_is_torchs_adamw_bit_for_bit():
    weights, state = _trained(EagerAdamW)
    reference_weights, reference_state = _trained(torch.optim.AdamW)
    assert all(torch.equal(a, b) for a, b in zip(weights, reference_weights, strict=True))
    assert state["param_groups"] == reference_state["param_groups"]
    for index, moments in reference_state["state"].items():
        assert all(torch.equal(state["state"][index][key], value) for key, value in moments.items())


def test_eager_adamw_never_imports_dynamo():
    """The point of EagerAdamW: a stage's optimizer costs no `import torch._dynamo` (1.5 s of CPU)."""
    script = (
        "import sys, torch; from tfctl.worker.optimizer import EagerAdamW\n"
        "w = torch.nn.Parameter(torch.ones(3)); o = EagerAdamW([w], lr=0.1)\n"
        "w.sum().backward(); o.step(); o.zero_grad(); o.load_state_dict(o.state_dict())\n"
        "assert 'torch._dynamo' not in sys.modules, 'torch._dynamo imported'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def test_one_rank_fp32_stage_clips_in_the_worker_and_deepspeed_does_not():
    from tfctl.worker.grad_clip import clips_alone, global_grad_norm

    alone = spec(train=TrainSection(zero_stage=0, precision="fp32", grad_clip=0.5))
    assert build_ds_config(alone, BatchGeometry.resolve(8, 1, None))["gradient_clipping"] == 0.0
    assert build_ds_config(alone, BatchGeometry.resolve(8, 2, None))["gradient_clipping"] == 0.5
    assert not clips_alone(TrainSection(zero_stage=1, grad_clip=0.5), 1)
    assert not clips_alone(TrainSection(zero_stage=0, grad_clip=0.0), 1)
    torch.manual_seed(0)
    ours, theirs = [torch.nn.Parameter(torch.randn(5, 3)) for _ in range(3)], []
    for p in ours:
        p.grad = torch.randn_like(p) * 3
        theirs.append(torch.nn.Parameter(p.detach().clone()))
        theirs[-1].grad = p.grad.clone()
    norm = global_grad_norm(ours, 0.5)
    assert norm == pytest.approx(torch.nn.utils.clip_grad_norm_(theirs, 0.5).item(), rel=1e-6) and norm > 0.5
    assert global_grad_norm(ours) == pytest.approx(0.5, rel=1e-5)  # clipped to the limit
    for p, q in zip(ours, theirs, strict=True):
        torch.testing.assert_close(p.grad, q.grad)


def test_spec_json_carries_the_learning_rate_once_and_older_specs_still_load():
    values = spec(steps=40, schedule=CosineSchedule(lr=1e-3, min_lr=1e-4, warmup_steps=4, total=40)).to_dict()
    assert not {"lr", "min_lr", "warmup", "lr_schedule"} & set(values["train"])
    assert values["schedule"] == {"lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 4, "total": 40, "offset": 0}
    # as tfctl wrote spec.json before: train's LR settings too, and a restarted schedule without a total
    older = {
        **values,
        "train": {**values["train"], "lr": 5e-4, "min_lr": 0.0, "warmup": 0.1, "lr_schedule": "restart"},
        "schedule": {"lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 4, "offset": 0, "total": None},
    }
    loaded = StageSpec.from_dict(older)
    assert loaded.schedule == CosineSchedule(lr=1e-3, min_lr=1e-4, warmup_steps=4, total=40)
