"""`compare`'s split of a growth run's wall time per stage: start-up, steps, evals, other, export."""

import json

import pytest

from tfctl.compare.markdown import to_markdown
from tfctl.compare.time_split import run_time_split, time_split_rows


def record(stage, kind, step, wall, **values):
    return {"kind": kind, "stage": stage, "step": step, "wall_seconds": wall, **values}


def stage_records(stage, offset=0.0):
    return [
        record(stage, "eval", 0, offset + 1.5),  # start-up 1.0 + the step-0 eval (the median of the others)
        record(stage, "train", 1, offset + 2.5, step_seconds=1.0),
        record(stage, "train", 2, offset + 3.5, step_seconds=1.0),
        record(stage, "eval", 2, offset + 4.0),
        record(stage, "train", 3, offset + 5.2, step_seconds=1.0),  # a 0.2 s checkpoint before it
        record(stage, "eval", 3, offset + 5.7),
        record(stage, "stage_end", 3, offset + 6.0),
    ]


def test_each_finished_stage_of_a_run_is_split_and_tabled(tmp_path):
    records = [*stage_records("s1"), {"kind": "growth", "stage": "s2", "step": 0}, *stage_records("s2", 1.0)]
    records.append(record("s3", "eval", 0, 2.0))  # started, never finished: left out
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    rows = run_time_split(tmp_path)
    assert [r["stage"] for r in rows] == ["s1", "s2"]
    expected = {"start-up": 1.0, "steps": 3.0, "evals": 1.5, "other": 0.2, "export": 0.3, "wall": 6.0}
    assert {k: v for k, v in rows[0].items() if k != "stage"} == pytest.approx(expected)
    assert rows[1]["start-up"] == pytest.approx(2.0) and rows[1]["wall"] == pytest.approx(7.0)
    columns, table = time_split_rows(rows)
    assert columns[-1] == "not training" and table[0] == [
        "s1",
        "6.0",
        "1.0",
        "3.0",
        "1.5",
        "0.2",
        "0.3",
        "50%",
    ]
    assert table[-1][:3] == ["all", "13.0", "3.0"]  # the run's total


def test_the_report_has_the_section_only_when_there_is_a_split():
    report = {
        "run": "tiny",
        "reference": None,
        "groups": [],
        "variants": [],
        "runs": [],
        "headline": [],
        "stage_ends": [],
        "flops_to_reach": [],
        "commands": [],
        "time_split": [],
    }
    assert "wall time went" not in to_markdown(report)
    split = {"start-up": 1.0, "steps": 3.0, "evals": 1.5, "other": 0.2, "export": 0.3, "wall": 6.0}
    report["time_split"] = [{"stage": "s1", **split}]
    assert "| s1 | 6.0 | 1.0 | 3.0 | 1.5 | 0.2 | 0.3 | 50% |" in to_markdown(report)
