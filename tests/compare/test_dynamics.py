"""Growth dynamics from metrics records: the loss jump at growth and the steps to recover (synthetic files)."""

import json

import pytest

from tfctl.compare.dynamics import TRAIN_WINDOW, dynamics_markdown, growth_dynamics, run_dynamics


def synthetic_records(jump: float = 0.3, recover_at: int | None = 40) -> list[dict]:
    """s1: train loss falling to 2.0, evals every 10 steps ending at 2.1; s2 (grown): val 2.1 + jump at step 0,
    back to ≤ 2.1 at `recover_at` (never when None); train losses the same shape."""
    records = []
    for step in range(1, 51):
        records.append({"kind": "train", "stage": "s1", "step": step, "loss": 2.0 + (50 - step) * 0.01})
    for step in range(0, 51, 10):
        records.append({"kind": "eval", "stage": "s1", "step": step, "val_loss": 2.1 + (50 - step) * 0.01})
    records.append({"kind": "stage_end", "stage": "s1", "step": 50, "val_loss": 2.1})
    records.append({"kind": "growth", "stage": "s2", "step": 0})
    pre_val, pre_train = 2.1, 2.0

    def after(step: int, pre: float) -> float:
        if recover_at is None:
            return pre + jump
        return (
            pre
            + jump * max(0.0, 1 - step / recover_at)
            - (0.001 * (step - recover_at) if step > recover_at else 0)
        )

    for step in [0, 5, 10, 20, 30, 40, 50, 60]:
        records.append({"kind": "eval", "stage": "s2", "step": step, "val_loss": after(step, pre_val)})
    for step in range(1, 61):
        records.append({"kind": "train", "stage": "s2", "step": step, "loss": after(step, pre_train)})
    return records


def test_jump_and_recovery_from_the_records():
    (s2,) = growth_dynamics(synthetic_records(jump=0.3, recover_at=40))
    assert s2["stage"] == "s2"
    assert s2["pre_growth_val_loss"] == pytest.approx(2.1)
    assert s2["growth_val_loss"] == pytest.approx(2.4)
    assert s2["loss_jump"] == pytest.approx(0.3)
    assert s2["recovery_steps"] == 40  # the first eval at or below 2.1
    assert s2["eval_steps"] == [0, 5, 10, 20, 30, 40, 50, 60]
    # train: the last 10 s1 steps average 2.045
    assert s2["pre_growth_train_loss"] == pytest.approx(2.0 + 0.01 * 4.5)
    assert s2["worst_train_loss_after"] == pytest.approx(2.0 + 0.3 * (1 - 1 / 40))
    # the mean of steps 30..39 is 2 + 0.3 · (1 - 34.5/40) = 2.04125 ≤ 2.045; of 29..38 it is 2.04875 > 2.045
    assert TRAIN_WINDOW == 10 and s2["train_recovery_steps"] == 39


def test_never_recovered_is_none_and_an_exact_growth_recovers_at_step_0():
    (never,) = growth_dynamics(synthetic_records(jump=0.3, recover_at=None))
    assert never["recovery_steps"] is None and never["train_recovery_steps"] is None
    assert never["loss_jump"] == pytest.approx(0.3)
    (exact,) = growth_dynamics(synthetic_records(jump=0.0, recover_at=40))
    assert exact["loss_jump"] == pytest.approx(0.0) and exact["recovery_steps"] == 0


def test_missing_step_0_eval_gives_no_jump_and_a_single_stage_none():
    records = [
        r for r in synthetic_records() if not (r["kind"] == "eval" and r["stage"] == "s2" and r["step"] == 0)
    ]
    (s2,) = growth_dynamics(records)
    assert s2["growth_val_loss"] is None and s2["loss_jump"] is None
    assert growth_dynamics([r for r in synthetic_records() if r["stage"] == "s1"]) == []


def test_run_dynamics_reads_metrics_jsonl_and_markdown_shows_the_numbers(tmp_path):
    lines = [json.dumps(r) for r in synthetic_records()] + ['{"kind": "eval", "stage"']  # a torn last line
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (s2,) = run_dynamics(tmp_path, ["s1", "s2"])
    assert s2["recovery_steps"] == 40
    text = "\n".join(dynamics_markdown([{"run": "tiny", "seed": 7, "stages": [s2]}]))
    assert "| tiny | s2 | 2.1000 | 2.4000 | +0.3000 | step 40 |" in text
    assert dynamics_markdown([{"run": "tiny", "seed": 7, "stages": []}]) == []


def test_train_recovery_needs_a_full_window_not_one_lucky_batch():
    """A grown stage whose first batch happens to be below the pre-growth mean has not recovered: the 10-step
    mean is only read once 10 steps exist (steps 1..15 at 2.5 but the first at 1.99, then 1.9)."""
    records = [{"kind": "train", "stage": "s1", "step": s, "loss": 2.0} for s in range(1, 11)]
    losses = {1: 1.99, **{s: 2.5 for s in range(2, 16)}, **{s: 1.9 for s in range(16, 40)}}
    records += [{"kind": "train", "stage": "s2", "step": s, "loss": loss} for s, loss in losses.items()]
    (s2,) = growth_dynamics(records)
    # steps 14..23: 2 × 2.5 + 8 × 1.9 = 20.2 > 20; steps 15..24: 2.5 + 9 × 1.9 = 19.6 ≤ 20
    assert s2["train_recovery_steps"] == 24
