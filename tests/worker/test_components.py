"""The pure parts of the worker: batch geometry, DeepSpeed config, decay groups, the eager AdamW, clipping alone."""

import subprocess
import sys

import pytest
import torch

from tests.stage.test_spec import spec
from tfctl.errors import UserError
from tfctl.model import TokenformerConfig, build_model
from tfctl.recipe.schema import TrainSection
from tfctl.worker.ds_config import BatchGeometry, build_ds_config
from tfctl.worker.optimizer import EagerAdamW, param_groups


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
