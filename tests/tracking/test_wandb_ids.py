"""One W&B run per run directory and purpose: a repeated `tfctl compare` updates its "<run>/compare" run
instead of adding one, and a copied run directory gets new ids on its next write."""

import json
import shutil

from tfctl.tracking.wandb_ids import IDS_FILE, sync_paths, wandb_run_id
from tfctl.tracking.wandb_run import log_side_run


def offline_runs(run_dir):
    """The W&B run ids of the offline run folders under run_dir/wandb, one entry per folder."""
    return sorted(path.name.rsplit("-", 1)[-1] for path in (run_dir / "wandb").glob("offline-run-*"))


def test_ids_are_kept_per_purpose_and_a_copied_directory_gets_new_ones(tmp_path):
    run = tmp_path / "runs" / "tiny"
    compare, summary = wandb_run_id(run, "compare"), wandb_run_id(run, "summary")
    assert compare != summary
    assert wandb_run_id(run, "compare") == compare and wandb_run_id(run, "stage/s1") not in (compare, summary)
    copy = tmp_path / "runs" / "tiny-grown"
    shutil.copytree(run, copy)  # cp -r: the ids file comes along
    assert json.loads((copy / IDS_FILE).read_text())["ids"]["compare"] == compare
    copied = wandb_run_id(copy, "compare")
    assert copied != compare and wandb_run_id(copy, "summary") != summary
    assert wandb_run_id(copy, "compare") == copied  # minted for the copy now: kept from here on
    assert wandb_run_id(run, "compare") == compare  # the original keeps its own


def test_a_repeated_side_run_is_one_offline_run_and_a_copy_logs_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    run = tmp_path / "tiny"

    def log(directory, value):
        return log_side_run(
            directory.name,
            "compare",
            "offline",
            lambda wandb, r: r.summary.update({"value": value}),
            "failed",
            directory=directory,
            run_id=wandb_run_id(directory, "compare"),
        )

    assert log(run, 1) == "offline" and log(run, 2) == "offline"
    assert offline_runs(run) == [wandb_run_id(run, "compare")]  # updated, not added
    copy = tmp_path / "tiny-grown"
    shutil.copytree(run, copy)
    assert log(copy, 3) == "offline"
    assert wandb_run_id(copy, "compare") != wandb_run_id(run, "compare")
    # the copy's own run is there; the original's folder it carried is the original's to upload
    assert wandb_run_id(copy, "compare") in offline_runs(copy) and len(offline_runs(copy)) == 2
    (own,) = sync_paths(copy)
    assert own.endswith(wandb_run_id(copy, "compare")) and sync_paths(run) == [f"{run}/wandb/offline-run-*"]
