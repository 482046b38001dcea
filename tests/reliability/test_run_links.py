"""Issue 24, links in and beside a run: tfctl never writes or deletes through one, whichever file of the run
it replaces (the lock, a stage directory, worker.log, compare/, a baseline sibling), and refuses before it
writes anything; `from:` is checked before the run directory exists; `--seeds` past the cap asks first.

Through the real CLI on copies of the session's reference run (conftest.py): no training."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_tfctl
from tests.reliability.conftest import ENV, RECIPE, write_recipe
from tests.reliability.user_error_table import snapshot

pytestmark = pytest.mark.slow  # the reference run is a real 2-stage training (shared with the other files)


@pytest.fixture
def run(reference, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(reference, copy, symlinks=True)
    return copy


@pytest.fixture
def victim(tmp_path) -> Path:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "important.txt").write_text("keep me\n")
    return victim


def refused(result) -> str:
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    return line


def unfinish(run: Path, stage: str) -> None:
    """The stage as a killed run leaves it: training, no result (its fingerprint kept)."""
    state = json.loads((run / "state.json").read_text())
    state["stages"][stage] = {"status": "training", "fingerprint": state["stages"][stage]["fingerprint"]}
    (run / "state.json").write_text(json.dumps(state))


def test_a_stage_directory_linked_outside_is_never_trained_into(run, victim, tmp_path):
    unfinish(run, "s2")
    shutil.move(run / "stages" / "s2", victim / "s2")
    (run / "stages" / "s2").symlink_to(victim / "s2", target_is_directory=True)
    before, run_before = snapshot(victim), snapshot(run)
    line = refused(run_tfctl("train", write_recipe(tmp_path / "r.yaml"), "-o", run, env=ENV))
    assert "stages/s2: is a link" in line
    assert snapshot(victim) == before and snapshot(run) == run_before


def test_a_worker_log_linked_outside_is_never_appended_to(run, victim, tmp_path):
    unfinish(run, "s2")
    (run / "stages" / "s2" / "worker.log").unlink(missing_ok=True)
    (run / "stages" / "s2" / "worker.log").symlink_to(victim / "important.txt")
    before, run_before = snapshot(victim), snapshot(run)
    line = refused(run_tfctl("train", write_recipe(tmp_path / "r.yaml"), "-o", run, env=ENV))
    assert "worker.log: is a link" in line
    assert snapshot(victim) == before and snapshot(run) == run_before


def test_a_lock_linked_outside_is_never_overwritten(run, victim, tmp_path):
    (run / ".lock").unlink(missing_ok=True)
    (run / ".lock").symlink_to(victim / "important.txt")
    line = refused(run_tfctl("train", write_recipe(tmp_path / "r.yaml"), "-o", run, env=ENV))
    assert ".lock: is a link" in line and (victim / "important.txt").read_text() == "keep me\n"


def test_a_compare_dir_linked_outside_gets_no_report(run, reference, victim):
    shutil.rmtree(run / "compare", ignore_errors=True)
    (run / "compare").symlink_to(victim, target_is_directory=True)
    before = snapshot(victim)
    line = refused(run_tfctl("compare", run, "--with", reference, env=ENV))
    assert "compare: is a link" in line and snapshot(victim) == before


def test_a_baseline_sibling_linked_outside_is_neither_deleted_nor_retrained(run, victim):
    from tfctl.compare.pipeline import _growth_setup
    from tfctl.compare.siblings import plan_siblings

    recipe, data_dir, stages = _growth_setup(run)
    (job, *_) = plan_siblings(run, recipe, data_dir, stages, [], [], None, False).jobs
    job.directory.symlink_to(victim, target_is_directory=True)
    before = snapshot(victim)
    line = refused(run_tfctl("compare", run, "--retrain", env=ENV))
    assert "a sibling run that is a link" in line and snapshot(victim) == before


def test_many_seeds_ask_first_with_the_plans_cost(run):
    line = refused(run_tfctl("compare", run, "--seeds", "1000", env=ENV))
    assert "999" in line and "FLOPs" in line and "--yes" in line
    assert sorted(p.name for p in run.parent.iterdir()) == ["run"]  # no sibling started


@pytest.mark.parametrize("change", [{"d_model": 64, "n_heads": 2}, {"n_layers": 4}])
def test_a_refused_from_writes_no_run_directory(reference, tmp_path, change):
    """A `from:` model of another backbone or larger than stage 0 (checked once the data's vocabulary is
    known): refused before runs/<name>/ exists. (Missing, a file, a run, NaN: rows of the table.)"""
    from tfctl.model import build_model, config_from_dict
    from tfctl.model_dir.weights import save_model_dir

    model = RECIPE["model"]
    config = config_from_dict(
        dict(vocab_size=512, seq_len=32, qkv_tokens=16, proj_tokens=16, ffn_tokens=16, **{**model, **change})
    )
    start = save_model_dir(build_model(config).state_dict(), config, tmp_path / "start")
    stages = [{**RECIPE["stages"][0], "from": str(start)}, *RECIPE["stages"][1:]]
    recipe = tmp_path / "from.yaml"
    recipe.write_text(yaml.safe_dump({**RECIPE, "name": "from-run", "stages": stages}))
    line = refused(run_tfctl("train", recipe, "-o", tmp_path / "new", env=ENV))
    assert "stages[0].from" in line and not (tmp_path / "new").exists()
