"""state.json: what has happened to each stage of a run, written atomically after every change.

Read back defensively: a state.json of the wrong shape (hand-edited, damaged, hostile) is refused in one
line at load, so nothing downstream sees a stage entry that is not an object, a stage name that is not a
plain name (a path, say), or a finished stage without the numbers its result promises.
"""

import json
import re
from pathlib import Path

from tfctl.errors import UserError
from tfctl.files import atomic_write_json
from tfctl.recipe.schema import STAGE_NAME_PATTERN
from tfctl.run.layout import RunDir
from tfctl.run.lock import RunLock
from tfctl.slurm import HOSTFILE_NAME, LOG_PATTERN, SCRIPT_NAME
from tfctl.tracking.wandb_ids import IDS_FILE

PENDING, GROWING, TRAINING, DONE, FAILED = "pending", "growing", "training", "done", "failed"
STATUSES = (PENDING, GROWING, TRAINING, DONE, FAILED)
STAGE_NAME = re.compile(STAGE_NAME_PATTERN)

# What a finished stage's result must hold (the stage_end record): the next stage's offsets, the report.
RESULT_NUMBERS = (
    "tokens",
    "flops",
    "device_seconds",
    "stage_tokens",
    "stage_flops",
    "wall_seconds",
    "val_loss",
    "val_ppl",
    "params",
)
GROWTH_NUMBERS = ("params_before", "params_after", "max_abs_logit_diff", "loss_before", "loss_after")


def is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def entry_problem(name, entry) -> str | None:
    """What is wrong with one stage entry of state.json, or None."""
    if not isinstance(name, str) or not STAGE_NAME.fullmatch(name):
        return f"{name!r} is not a stage name (letters, digits, ., - and _)"
    if not isinstance(entry, dict):
        return f"stage {name}: expected an object, got {json.dumps(entry)[:40]}"
    if entry.get("status", PENDING) not in STATUSES:
        return f"stage {name}: unknown status {entry.get('status')!r}"
    for key in ("fingerprint", "error"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            return f"stage {name}: {key} is not a string"
    result, growth = entry.get("result"), entry.get("growth")
    if entry.get("status") == DONE or result is not None:
        if not isinstance(result, dict) or not all(is_number(result.get(k)) for k in RESULT_NUMBERS):
            return f"stage {name}: its result is missing or incomplete"
    if growth is not None:
        if not isinstance(growth, dict) or not all(is_number(growth.get(k)) for k in GROWTH_NUMBERS):
            return f"stage {name}: its growth report is incomplete"
        if not isinstance(growth.get("source"), str):
            return f"stage {name}: its growth report names no source stage"
    return None


def state_problem(data) -> str | None:
    if not isinstance(data, dict) or not isinstance(data.get("stages"), dict):
        return "expected an object with a 'stages' object"
    for key in ("name", "data_dir"):
        if data.get(key) is not None and not isinstance(data[key], str):
            return f"{key} is not a string"
    for name, entry in data["stages"].items():
        problem = entry_problem(name, entry)
        if problem:
            return problem
    return None


class RunState:
    def __init__(self, path: Path, data: dict):
        self.path, self.data = path, data

    @classmethod
    def load(cls, path: Path, name: str) -> "RunState":
        if not path.is_file():
            if path.exists() or path.is_symlink():
                raise UserError(f"{path}: not a regular file; restore the run state or use a new -o")
            return cls(path, {"name": name, "stages": {}})
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError) as error:
            raise UserError(f"{path}: not a readable run state ({error})") from None
        problem = state_problem(data)
        if problem:
            raise UserError(
                f"{path}: not a valid run state ({problem}); restore it or start a new run directory with -o"
            )
        return cls(path, data)

    def save(self) -> None:
        atomic_write_json(self.path, self.data)

    def stages(self) -> dict[str, dict]:
        return self.data["stages"]

    def stage(self, name: str) -> dict:
        return self.data["stages"].setdefault(name, {"status": PENDING})

    def update(self, name: str, **values) -> None:
        self.stage(name).update(values)
        self.save()

    def finished(self) -> list[str]:
        return [name for name, s in self.data["stages"].items() if s.get("status") == DONE]

    def drop(self, names: list[str]) -> None:
        for name in names:
            self.data["stages"].pop(name, None)
        self.save()


def checked_run_dir(run_dir: str | Path | None, name: str) -> Path:
    """The run directory a recipe named `name` trains in (default runs/<name>): new, or a directory whose
    state.json (if any) is readable and valid. Otherwise a one-line UserError, before anything is written
    (and before `tfctl train` loads torch or prepares data): a folder that is not a run, a run in use."""
    run_dir = Path(run_dir) if run_dir else Path("runs") / name
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"{run_dir}: not a directory; give -o a run directory (new or existing)")
    RunState.load(run_dir / "state.json", name)
    if run_dir.is_dir():  # in use: refused now, before the data is prepared
        RunLock(RunDir(run_dir).lock).check_free()
    if run_dir.is_dir() and not (run_dir / "state.json").is_file():
        foreign = sorted(p.name for p in run_dir.iterdir() if not is_run_file(p.name))
        if foreign:
            raise UserError(
                f"{run_dir}: a folder that is not a run directory (it holds {foreign[0]}); "
                "give -o a new, empty or run directory"
            )
    return run_dir


# what a run directory holds before its first state.json (a run killed early, a baseline being set up)
RUN_FILES = (
    "recipe.yaml",
    "state.json",
    "metrics.jsonl",
    "data",
    "stages",
    "compare",
    ".lock",
    "baseline.json",
)


SUBMIT_FILES = (SCRIPT_NAME, HOSTFILE_NAME)  # what `tfctl submit` writes before the job's `tfctl train`
SLURM_LOG = re.compile(LOG_PATTERN.replace(".", r"\.").replace("%j", r"\d+") + "$")


def is_run_file(name: str) -> bool:
    return (
        name in RUN_FILES
        or name in SUBMIT_FILES
        or name == IDS_FILE
        or bool(SLURM_LOG.match(name))
        or (name.startswith(".") and ".tmp-" in name)
        or name == "wandb"
    )
