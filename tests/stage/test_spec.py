"""The stage spec (spec.json: what the orchestrator writes and every rank reads) and its learning-rate schedule."""

import json
import math

import pytest

from tfctl.errors import UserError
from tfctl.recipe.schema import TrainSection
from tfctl.recipe.tau import TauPolicy
from tfctl.stage.schedule import CosineSchedule
from tfctl.stage.spec import StageSpec


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


@pytest.mark.parametrize("train", [{"precision": "fp8"}, {"zero_stage": 4}])
def test_a_spec_with_unknown_train_settings_is_refused(train):
    values = spec().to_dict()
    values["train"].update(train)
    with pytest.raises(ValueError, match=next(iter(train))):
        StageSpec.from_dict(values)


def test_spec_json_round_trip():
    original = spec(train=TrainSection(zero_stage=2, betas=(0.8, 0.9)))
    assert StageSpec.from_dict(original.to_dict()) == original


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


def test_spec_json_carries_the_tau_policy_once_and_older_specs_still_load(tmp_path):
    annealed = spec(model={"scale_mode": "fixed"}, tau=TauPolicy("anneal", 7))
    values = annealed.to_dict()
    assert values["tau"] == {"kind": "anneal", "steps": 7} and "tau_anneal_steps" not in values
    assert StageSpec.from_dict(values) == annealed
    # as tfctl wrote spec.json before the τ policy: the anneal's steps, or 0 for the model config's τ held
    older = {k: v for k, v in values.items() if k != "tau"}
    assert StageSpec.from_dict({**older, "tau_anneal_steps": 7}).tau == TauPolicy("anneal", 7)
    assert StageSpec.from_dict({**older, "tau_anneal_steps": 0}).tau == TauPolicy("fixed")
    assert StageSpec.from_dict({**older, "model": {}}).tau == TauPolicy("sqrt_n")  # a spec by hand
    # a spec edited into contradicting itself: one line naming the file
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({**values, "tau": {"kind": "sqrt_n", "steps": 0}}))
    with pytest.raises(UserError, match=r"spec.json: not a usable stage spec \(tau.kind sqrt_n contradicts"):
        StageSpec.load(path)
