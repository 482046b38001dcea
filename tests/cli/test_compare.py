"""`tfctl compare` errors a user can cause: one line on stderr, exit 2."""

import json
import shutil

import pytest

from tfctl.run.layout import RunDir


def one_line_error(result, *words):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0], lines[0]


def test_no_such_run(tfctl, tmp_path):
    one_line_error(tfctl("compare", tmp_path / "nope"), "no such run directory")


def test_run_with_no_finished_stage(tfctl, tmp_path):
    run = tmp_path / "runs" / "half"
    run.mkdir(parents=True)
    (run / "state.json").write_text(json.dumps({"name": "half", "stages": {"s1": {"status": "training"}}}))
    one_line_error(tfctl("compare", run), str(run), "no finished stage")


@pytest.mark.slow  # the shared growth run
def test_with_runs_on_other_data_are_refused(tfctl, growth_run, tmp_path):
    """A copy of the growth run whose prepared data used another tokenizer: perplexities not comparable."""
    other = tmp_path / "other"
    shutil.copytree(
        growth_run,
        other,
        ignore=shutil.ignore_patterns("checkpoints", "final", "init", "data", "compare", "wandb"),
    )
    data = tmp_path / "other-data"
    data.mkdir()
    meta = json.loads((RunDir(growth_run).data / "meta.json").read_text())
    meta["tokenizer"]["spec"] = "bpe:1024"
    (data / "meta.json").write_text(json.dumps(meta))
    state = json.loads(RunDir(other).state.read_text())
    state["data_dir"] = str(data)
    RunDir(other).state.write_text(json.dumps(state))
    result = tfctl("compare", growth_run, "--with", other, env={"WANDB_MODE": "disabled"})
    one_line_error(result, str(other), "tokenizer bpe:1024 vs bpe:512")
    assert not (tmp_path / "other.baseline-scratch").exists()


@pytest.mark.slow  # the shared growth run
def test_unknown_baseline(tfctl, growth_run):
    one_line_error(tfctl("compare", growth_run, "--baseline", "nope"), "--baseline nope")
