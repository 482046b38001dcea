"""`tfctl compare --tasks`: the downstream table (growth stages vs baselines) in report.json and report.md."""

import json
import shutil

import pytest

from tfctl.downstream.compare_table import add_downstream, prepare_tasks


def test_downstream_table_covers_every_stage_and_baseline(make_model_dir, local_tasks, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    growth, baseline = tmp_path / "tiny", tmp_path / "tiny.baseline-scratch"
    for run, family, stages in (
        (growth, "tokenformer", ["s1", "s2"]),
        (baseline, "transformer", ["scratch"]),
    ):
        for stage in stages:
            shutil.copytree(make_model_dir(family), run / "stages" / stage / "final")
    (growth / "compare").mkdir()
    (growth / "compare" / "report.md").write_text("# tiny vs baselines\n")
    report = {
        "run": "tiny",
        "runs": [
            {"label": "tiny", "path": str(growth), "stages": ["s1", "s2"]},
            {"label": "baseline-scratch", "path": str(baseline), "stages": ["scratch"]},
        ],
    }
    names, built = prepare_tasks("shakespeare_mc,shakespeare_ppl", local_tasks)
    table = add_downstream(growth, report, names, built, limit=3)
    assert [row["label"] for row in table["rows"]] == ["tiny/s1", "tiny/s2", "baseline-scratch"]
    assert table["rows"][0]["results"] == table["rows"][1]["results"]  # the same weights in both stages
    assert table["rows"][2]["results"] != table["rows"][0]["results"]  # the baseline is another model
    saved = json.loads((growth / "compare" / "report.json").read_text())
    assert saved["downstream"]["tasks"] == ["shakespeare_mc", "shakespeare_ppl"]
    markdown = (growth / "compare" / "report.md").read_text()
    assert (
        markdown.startswith("# tiny vs baselines")
        and "## Downstream tasks (first 3 examples per task)" in markdown
    )
    assert "| baseline-scratch |" in markdown and "shakespeare_mc acc" in markdown


@pytest.mark.slow  # an unknown name is only known unknown once lm-eval has indexed its whole registry: ~20 s CPU
def test_compare_with_an_unknown_task_fails_before_training(tfctl, make_run, local_tasks, tmp_path):
    run = make_run(tmp_path / "tiny", {"s1": "tokenformer"})  # a finished run: the tasks are what is wrong
    result = tfctl("compare", run, "--tasks", "nope", "--include-path", local_tasks)
    assert (
        result.returncode == 2 and result.stderr.count("\n") == 1 and "unknown task(s) nope" in result.stderr
    ), result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"] and not (run / "compare").exists()  # no baseline


def test_downstream_table_on_wandb(monkeypatch, tmp_path):
    import wandb

    from tfctl.downstream.compare_table import log_wandb

    logged, summary = {}, {}

    class Run:
        def __init__(self):
            self.summary = summary

        def log(self, values):
            logged.update(values)

        def finish(self):
            pass

    monkeypatch.setattr(wandb, "init", lambda **options: logged.update(name=options["name"]) or Run())
    monkeypatch.delenv("WANDB_MODE", raising=False)
    table = {
        "tasks": ["hellaswag"],
        "limit": None,
        "rows": [{"label": "tiny/s1", "results": {"hellaswag": {"acc": 0.25, "acc_norm": 0.3}}}],
    }
    assert log_wandb(tmp_path / "tiny", table) == "offline"  # no recipe.yaml: offline
    assert logged["name"] == "tiny/downstream"
    assert logged["downstream"].columns == ["model", "hellaswag/acc", "hellaswag/acc_norm"]
    assert logged["downstream"].data == [["tiny/s1", 0.25, 0.3]]
    assert summary == {"tiny/s1/hellaswag/acc": 0.25, "tiny/s1/hellaswag/acc_norm": 0.3}
