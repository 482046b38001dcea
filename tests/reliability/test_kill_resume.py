"""Faults injected for real into one run directory, one after another, then resumed to the end: the result
must equal the uninterrupted reference run (CPU, fp32). Several faults per `tfctl train`-invocation budget:

    A  the save at s1 step 4 fails with ENOSPC   → exit 1, one line; step 2 stays the valid checkpoint
    B  SIGKILL of the ranks mid-write at step 6   → `.partial-step00000006/` without manifest, never used
    C  SIGKILL of `tfctl train` during growth     → ranks die with it; a stale lock is left and cleared later
    D  SIGKILL of `tfctl train` during an s2 step → then s2's newest checkpoint is cut in half
    E  plain re-run                               → reports the corrupt checkpoint in one line, falls back,
                                                    finishes with the reference's losses
"""

import json

import pytest

from tests.conftest import run_tfctl
from tests.reliability.conftest import ENV, Train, records, stage_end
from tfctl.stage.manifest import MANIFEST, verify_manifest

pytestmark = pytest.mark.slow  # real `tfctl train` runs, SIGKILLed


def error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def state(run_dir):
    return json.loads((run_dir / "state.json").read_text())["stages"]


@pytest.fixture(scope="module")
def chaos(recipe_file, tmp_path_factory):
    """The run directory after faults A-E, and what each step observed (asserted by the tests below)."""
    run_dir = tmp_path_factory.mktemp("chaos") / "run"
    seen = {}
    checkpoints = run_dir / "stages" / "s1" / "checkpoints"

    # A: no space left on device in the middle of the step-4 save
    seen["A"] = run_tfctl(
        "train", recipe_file, "-o", run_dir, env={**ENV, "TFCTL_FAULT": "enospc_during_checkpoint:4"}
    )
    seen["A_state"] = state(run_dir)["s1"]
    seen["A_latest"] = (checkpoints / "latest").read_text()
    seen["A_step2"] = verify_manifest(checkpoints / "step00000002")

    # B: every rank SIGKILLed after DeepSpeed wrote the step-6 files, before manifest / rename / latest
    seen["B"] = run_tfctl(
        "train", recipe_file, "-o", run_dir, env={**ENV, "TFCTL_FAULT": "kill_during_checkpoint:6"}
    )
    partial = checkpoints / ".partial-step00000006"
    seen["B_partial"] = sorted(p.name for p in partial.iterdir()) if partial.is_dir() else None
    seen["B_latest"] = (checkpoints / "latest").read_text()

    # C: SIGKILL of tfctl train's process group while s2 is being grown from s1
    train = Train(recipe_file, run_dir)
    train.wait_for(lambda: (run_dir / "stages" / "s2").exists())
    train.kill()
    seen["C_lock"] = (run_dir / ".lock").is_file()
    seen["C_output"] = train.output()

    # D: SIGKILL during s2's training, then its newest checkpoint is cut in half
    train = Train(recipe_file, run_dir)
    train.wait_for(lambda: any(r["step"] >= 5 for r in records(run_dir, "train", "s2")))
    train.kill()
    s2 = run_dir / "stages" / "s2" / "checkpoints"
    newest = sorted(p for p in s2.glob("step*"))[-1]
    victim = newest / "mp_rank_00_model_states.pt"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    seen["D_corrupted"], seen["D_previous"] = newest.name, sorted(p.name for p in s2.glob("step*"))[-2]

    # E: the same command again, undisturbed
    train = Train(recipe_file, run_dir)
    seen["E_code"] = train.finish()
    seen["E_output"] = train.output()
    return run_dir, seen


def test_failed_save_stops_with_one_line_and_keeps_the_previous_checkpoint(chaos):
    _, seen = chaos
    result = seen["A"]
    assert result.returncode == 1
    (line,) = error_lines(result.stderr)
    assert line.startswith(
        "error: stage s1 failed: checkpoint save failed at step 4: [Errno 28] No space left"
    )
    assert "the previous checkpoint (step00000002) is intact" in line
    assert seen["A_state"]["status"] == "failed"
    assert seen["A_latest"] == "step00000002" and seen["A_step2"] is None


def test_kill_during_checkpoint_write_leaves_it_unused(chaos):
    _, seen = chaos
    assert seen["B"].returncode == 1
    (line,) = error_lines(seen["B"].stderr)
    assert "killed by SIGKILL" in line
    assert "mp_rank_00_model_states.pt" in seen["B_partial"] and MANIFEST not in seen["B_partial"]
    assert seen["B_latest"] == "step00000004"


def test_stale_lock_of_a_killed_run_is_cleared(chaos):
    _, seen = chaos
    assert seen["C_lock"]  # left behind by the SIGKILLed tfctl train, taken over by the next one
    assert "[s1] done" in seen["C_output"]


def test_corrupt_checkpoint_is_reported_and_the_previous_one_used(chaos):
    _, seen = chaos
    assert seen["E_code"] == 0, seen["E_output"][-3000:]
    (line,) = [line for line in seen["E_output"].splitlines() if "is corrupt" in line]
    assert f"{seen['D_corrupted']} is corrupt: mp_rank_00_model_states.pt has" in line
    assert line.endswith(f"falling back to {seen['D_previous']}")
    assert f"resuming stage s2 from {seen['D_previous']}" in seen["E_output"]


def test_interrupted_run_equals_the_uninterrupted_one(chaos, reference):
    run_dir, _ = chaos
    assert {name: s["status"] for name, s in state(run_dir).items()} == {"s1": "done", "s2": "done"}
    for stage in ("s1", "s2"):
        assert stage_end(run_dir, stage)["val_loss"] == pytest.approx(
            stage_end(reference, stage)["val_loss"], abs=1e-6
        )
        ours, theirs = records(run_dir, "train", stage), records(reference, "train", stage)
        assert [r["step"] for r in ours] == list(range(1, 9))  # every step once: no duplicates, no gaps
        assert [r["loss"] for r in ours] == pytest.approx([r["loss"] for r in theirs], abs=1e-6)
    assert len(records(run_dir, "growth", "s2")) == 1
