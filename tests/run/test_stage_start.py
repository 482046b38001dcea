"""Where a stage started (its step-0 eval) is kept with its result, so a stage that ends worse says so."""

import json

from tfctl.run.stage_loop import stage_start
from tfctl.tracking.live import ended_worse


def test_the_step_0_eval_of_the_stage_is_its_start(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    records = [
        {"kind": "eval", "stage": "s1", "step": 0, "val_loss": 6.0, "val_ppl": 403.4},
        {"kind": "eval", "stage": "grown-2m", "step": 0, "val_loss": 5.03, "val_ppl": 152.52},
        {"kind": "eval", "stage": "grown-2m", "step": 20, "val_loss": 5.1, "val_ppl": 164.0},
    ]
    metrics.write_text("".join(json.dumps(r) + "\n" for r in records))
    start = stage_start(metrics, "grown-2m")
    assert start == {"start_val_loss": 5.03, "start_val_ppl": 152.52}
    assert stage_start(metrics, "s9") == {}  # a stage resumed past a lost step-0 eval: nothing claimed
    result = {**start, "val_loss": 5.184, "val_ppl": 178.36, "steps": 49}
    assert ended_worse(result) == "ended worse than it started: val ppl 152.52 → 178.36 in 49 steps"
    assert ended_worse({**start, "val_loss": 5.0, "val_ppl": 148.4}) is None
