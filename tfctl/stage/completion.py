"""Whether a stage's work is done, whatever exit status its ranks reported.

A rank can die after the stage's result is safely on disk (issue 15: an abort while the interpreter exits, see
tfctl.worker.shutdown). So the orchestrator asks this, not the exit code alone: a stage is done when rank 0
recorded its `stage_end` and `final/` matches the manifest rank 0 wrote after the export's files.
"""

from pathlib import Path

from tfctl.stage.manifest import verify_manifest
from tfctl.tracking import read_metrics


def verified_stage_end(final_dir: str | Path, metrics_path: str | Path, stage: str) -> dict | None:
    """The stage's `stage_end` record when its export is complete and verified (every file of `final_dir`
    matches its size and sha256 in manifest.json); otherwise None."""
    ends = read_metrics(metrics_path, kind="stage_end", stage=stage)
    if not ends or verify_manifest(Path(final_dir)) is not None:
        return None
    return ends[-1]
