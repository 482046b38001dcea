"""`python -m tfctl.bench.demo`'s split of a stage into phases, on records shaped like a worker's."""

import pytest

from tfctl.bench.demo import render, split_stage, stage_windows


def test_console_windows_run_from_training_to_done():
    lines = [
        (1.0, "preparing the data (cached after the first time): done in 0:21"),
        (2.0, "[s1] training 196,736 params for 98 steps (200,704 tokens) on 1 rank(s)"),
        (5.0, "[s1] eval at step 0: val loss 7.6365, ppl 2072.55"),
        (30.5, "[s1] done"),
        (33.0, "[s2] growing s1 into s2: done in 0:02"),
        (33.5, "[s2] training 327,808 params for 98 steps (200,704 tokens) on 1 rank(s)"),
        (60.0, "[s2] done"),
    ]
    assert stage_windows(lines) == {"s1": 28.5, "s2": 26.5}


def test_a_stage_splits_into_process_setup_steps_evals_other_export():
    def record(kind, step, wall, **values):
        return {"kind": kind, "stage": "s1", "step": step, "wall_seconds": wall, **values}

    records = [
        {"kind": "growth", "stage": "s1", "step": 0, "seconds": 1.0},  # the orchestrator's: not timed here
        record("eval", 0, 1.5),  # setup 1.0 + the step-0 eval (0.5, the median of the others)
        record("train", 1, 2.5, step_seconds=1.0),
        record("train", 2, 3.5, step_seconds=1.0),
        record("eval", 2, 4.0),  # 0.5
        record("train", 3, 5.2, step_seconds=1.0),  # 0.2 checkpoint after step 2
        record("train", 4, 6.2, step_seconds=1.0),
        record("eval", 4, 6.7),  # 0.5
        record("stage_end", 4, 7.0),  # export 0.3
    ]
    split = split_stage(records, window=9.0)
    expected = dict(process=2.0, setup=1.0, steps=4.0, evals=1.5, other=0.2, export=0.3, total=9.0)
    assert split == pytest.approx(expected)
    assert sum(split[phase] for phase in expected if phase != "total") == pytest.approx(split["total"])
    table = render({"stages": {"s1": split}, "commands": {}})
    assert table.splitlines()[1].split() == ["s1", "2.0", "1.0", "4.0", "1.5", "0.2", "0.3", "9.0"]
