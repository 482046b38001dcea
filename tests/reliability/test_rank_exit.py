"""A rank that dies after its stage's export is complete and verified does not fail the stage (issue 15, item 0:
`terminate called without an active exception` as a rank exited); one that dies before it does."""

import json

import pytest

from tests.conftest import run_tfctl
from tests.reliability.conftest import ENV, RECIPE, stage_end, write_recipe
from tfctl.model import TransformerConfig, build_model
from tfctl.model_dir.weights import save_model_dir
from tfctl.stage.completion import verified_stage_end
from tfctl.stage.manifest import write_manifest
from tfctl.tracking import MetricsFile

ONE_STAGE = {**RECIPE, "name": "exit", "stages": RECIPE["stages"][:1]}


def finished_stage(root):
    """A stage as a worker leaves it: final/ with its manifest, and a stage_end record."""
    config = TransformerConfig(vocab_size=64, seq_len=8, n_layers=1, d_model=8, n_heads=2)
    final = save_model_dir(build_model(config).state_dict(), config, root / "final")
    write_manifest(final)
    metrics = MetricsFile(root / "metrics.jsonl")
    metrics.write({"kind": "stage_end", "stage": "s1", "step": 4, "val_loss": 1.0})
    metrics.close()
    return final, root / "metrics.jsonl"


def test_verified_stage_end_needs_the_record_and_an_intact_export(tmp_path):
    final, metrics = finished_stage(tmp_path)
    assert verified_stage_end(final, metrics, "s1")["val_loss"] == 1.0
    assert verified_stage_end(final, metrics, "s2") is None  # no stage_end for that stage
    weights = final / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert verified_stage_end(final, metrics, "s1") is None  # a flipped bit
    (final / "manifest.json").unlink()
    assert verified_stage_end(final, metrics, "s1") is None  # never completely written


@pytest.mark.slow
def test_a_rank_dying_after_the_export_does_not_fail_the_stage(tmp_path):
    recipe = write_recipe(tmp_path / "exit.yaml", ONE_STAGE)
    run_dir = tmp_path / "run"
    result = run_tfctl("train", recipe, "-o", run_dir, env={**ENV, "TFCTL_FAULT": "abort_at_exit:0"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "[s1] a rank exited with -6 after the export was complete and verified" in result.stdout
    state = json.loads((run_dir / "state.json").read_text())["stages"]["s1"]
    assert state["status"] == "done" and state["result"] == stage_end(run_dir, "s1")


@pytest.mark.slow
def test_rank_1_aborting_at_exit_under_deepspeed_does_not_fail_the_stage(tmp_path):
    """The symptom of issue 15 exactly: rank 1 aborts as it exits, the deepspeed launcher exits 250."""
    recipe = write_recipe(tmp_path / "exit.yaml", {**ONE_STAGE, "launch": {"nproc_per_node": 2}})
    run_dir = tmp_path / "run"
    result = run_tfctl("train", recipe, "-o", run_dir, env={**ENV, "TFCTL_FAULT": "abort_at_exit:1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "[s1] a rank exited with 250 after the export was complete and verified" in result.stdout
    assert stage_end(run_dir, "s1")["world_size"] == 2
    final = run_dir / "stages" / "s1" / "final"
    assert json.loads((final / "export.json").read_text())["steps"] == 8
    assert run_tfctl("eval", run_dir, env=ENV).returncode == 0  # the export loads
