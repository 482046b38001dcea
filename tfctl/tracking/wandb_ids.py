"""The W&B run ids of one run directory, kept in its wandb_ids.json so a command run again continues the same
W&B runs instead of adding new ones: one "<run>/compare", one "<run>/summary", one run per stage.

The file also records where its ids were minted (the directory's absolute path and inode). A copied run
directory (`cp -r runs/tiny runs/tiny-grown`) carries the file along but sits elsewhere: on its next write it
gets fresh ids, so uploading both directories never sends one W&B run twice.
"""

import json
from pathlib import Path

from tfctl.files import atomic_write_json
from tfctl.tracking.wandb_run import new_run_id

IDS_FILE = "wandb_ids.json"


def directory_identity(run_dir: Path) -> dict:
    """Where a run directory is: its absolute path and its inode (a copy differs in both, a move in one)."""
    stat = run_dir.stat()
    return {"path": str(run_dir.resolve()), "inode": stat.st_ino, "device": stat.st_dev}


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("ids"), dict) else {}


def run_dir_ids(run_dir: str | Path) -> dict[str, str]:
    """The ids minted for `run_dir` ({key: id}); empty for a new directory or one copied from elsewhere."""
    run_dir = Path(run_dir)
    data = _load(run_dir / IDS_FILE)
    if not run_dir.is_dir() or data.get("minted_at") != directory_identity(run_dir):
        return {}
    return {key: value for key, value in data["ids"].items() if isinstance(value, str)}


def wandb_run_id(run_dir: str | Path, key: str, fallback: str | None = None) -> str:
    """The W&B run id for `key` ("compare", "summary", "stage/s1", ...) in `run_dir`: the one minted here
    before, else `fallback` (an id a checkpoint carried, kept when this directory minted no ids yet and is
    not a copy), else a new one; recorded in wandb_ids.json."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data = _load(run_dir / IDS_FILE)
    copied = bool(data) and data.get("minted_at") != directory_identity(run_dir)
    ids = {} if copied else run_dir_ids(run_dir)
    if key not in ids:
        ids[key] = fallback if fallback and not copied else new_run_id()
        atomic_write_json(run_dir / IDS_FILE, {"minted_at": directory_identity(run_dir), "ids": ids})
    return ids[key]


def sync_paths(run_dir: str | Path) -> list[str]:
    """What `wandb sync` should upload for `run_dir`: its offline run folders (a glob when they are all its
    own), leaving out those a copied directory carried from the original (the original uploads them)."""
    folders = sorted(Path(run_dir, "wandb").glob("offline-run-*"))
    ids = set(run_dir_ids(run_dir).values())
    own = [folder for folder in folders if not ids or folder.name.rsplit("-", 1)[-1] in ids]
    if own == folders:
        return [f"{run_dir}/wandb/offline-run-*"] if folders else []
    return [str(folder) for folder in own]
