"""DeepSpeed checkpoints of a stage under `out_dir/checkpoints/`, with our own progress in client_state.

    checkpoints/
      latest                  the tag of the newest COMPLETE checkpoint (written atomically, last)
      step00000020/           DeepSpeed's files (model + optimizer states, one per ZeRO partition)
        rng-rank0.pt ...      each rank's RNG states
        manifest.json         size + sha256 of every file above, written after them
      .partial-step00000030/  a save in progress (or cut short): never loaded, removed at the next start
      zero_to_fp32.py         DeepSpeed's consolidation script

A save writes into `.partial-<tag>/`, fsyncs, writes the manifest, renames the directory to `<tag>` and only
then moves `latest`. At resume every candidate is verified against its manifest before DeepSpeed opens a file:
the newest one that checks out is used, a corrupt one is reported in one line, removed, and the one before
it is used instead. All loads are `torch.load(weights_only=True)` (see safe_load.py). The last `keep`
checkpoints are kept. Resume rule (torchtitan's): a checkpoint in the output dir wins over initial weights.
"""

import os
import pickle
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from tfctl.errors import TrainingError
from tfctl.files import atomic_write_text, fsync_dir
from tfctl.stage.manifest import verify_manifest, write_manifest
from tfctl.worker import faults
from tfctl.worker.safe_load import safe_torch_load, use_safe_loader

LATEST = "latest"
CLIENT_KEY = "tfctl"
PARTIAL = ".partial-"


def tag_for(step: int) -> str:
    return f"step{step:08d}"


def rng_state() -> dict:
    """Plain tensors, ints and tuples only, so the file loads with weights_only=True."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def free_space(directory: Path) -> str:
    try:
        return f"{shutil.disk_usage(directory).free:,} bytes free there"
    except OSError:
        return "free space unknown"


@dataclass
class Checkpointer:
    directory: Path
    keep: int
    rank: int
    say: callable = print
    fingerprint: str | None = None  # the stage settings' fingerprint, recorded in every manifest

    def tags(self) -> list[str]:
        """Committed checkpoint tags (renamed into place), oldest first; none of them verified yet."""
        if not self.directory.is_dir():
            return []
        return sorted(p.name for p in self.directory.iterdir() if p.is_dir() and p.name.startswith("step"))

    def latest_tag(self) -> str | None:
        path = self.directory / LATEST
        if not path.is_file():
            return None
        tag = path.read_bytes().decode("utf-8", errors="replace").strip()  # damaged: no tag, not a crash
        return tag if tag in self.tags() else None

    def choose_resume_tag(self) -> str | None:
        """Rank 0's part of `resume_tag`: drop partial saves, verify from the newest down, report and drop
        corrupt ones; point `latest` at the winner. None: no usable checkpoint."""
        if not self.directory.is_dir():
            return None
        for partial in self.directory.glob(PARTIAL + "*"):
            shutil.rmtree(partial, ignore_errors=True)
        for tag in reversed(self.tags()):
            problem = verify_manifest(self.directory / tag)
            if problem is None:
                if self.latest_tag() != tag:
                    atomic_write_text(self.directory / LATEST, tag)
                return tag
            older = [t for t in self.tags() if t < tag]
            self.say(
                f"checkpoint {self.directory / tag} is corrupt: {problem}; "
                f"{'falling back to ' + older[-1] if older else 'no older checkpoint, starting the stage over'}"
            )
            shutil.rmtree(self.directory / tag, ignore_errors=True)
        (self.directory / LATEST).unlink(missing_ok=True)
        return None

    def resume_tag(self) -> str | None:
        """Collective: the verified checkpoint every rank resumes from (rank 0 checks, everyone agrees)."""
        chosen = [self.choose_resume_tag() if self.rank == 0 else None]
        if dist.is_initialized():
            dist.broadcast_object_list(chosen, src=0)
        return chosen[0]

    def save(self, engine, step: int, progress: dict) -> None:
        """Collective: every rank writes its part into `.partial-<tag>/`; rank 0 then writes the manifest,
        renames the directory to `<tag>`, points `latest` at it and prunes old tags."""
        tag = tag_for(step)
        partial = self.directory / (PARTIAL + tag)
        try:
            engine.save_checkpoint(
                str(self.directory), tag=partial.name, client_state={CLIENT_KEY: progress}, save_latest=False
            )
            torch.save(rng_state(), partial / f"rng-rank{self.rank}.pt")
            faults.inject("enospc_during_checkpoint", step)
            faults.inject("kill_during_checkpoint", step)
        except (OSError, RuntimeError) as error:  # torch reports a failed write (a full disk) as RuntimeError
            reason = (
                error
                if isinstance(error, OSError)
                else f"{str(error).strip().splitlines()[-1].strip()} ({free_space(self.directory)})"
            )
            raise TrainingError(
                f"checkpoint save failed at step {step}: {reason}; "
                f"the previous checkpoint ({self.latest_tag() or 'none'}) is intact"
            ) from error
        dist.barrier()
        if self.rank == 0:
            try:
                write_manifest(partial, self.fingerprint)
                shutil.rmtree(self.directory / tag, ignore_errors=True)
                os.replace(partial, self.directory / tag)
                fsync_dir(self.directory)
                atomic_write_text(self.directory / LATEST, tag)
            except OSError as error:
                raise TrainingError(
                    f"checkpoint save failed at step {step}: {error}; "
                    f"the previous checkpoint ({self.latest_tag() or 'none'}) is intact"
                ) from error
            self._prune(keep_tag=tag)
        dist.barrier()

    def load(self, engine, tag: str) -> dict:
        """Restore model, optimizer and this rank's RNG from a verified `tag`; returns our progress dict."""
        use_safe_loader(engine)
        try:
            path, client_state = engine.load_checkpoint(
                str(self.directory), tag=tag, load_optimizer_states=True, load_lr_scheduler_states=False
            )
            rng_file = self.directory / tag / f"rng-rank{self.rank}.pt"
            rng = safe_torch_load(rng_file) if rng_file.is_file() else None
        except pickle.UnpicklingError as error:
            first = str(error).strip().splitlines()[0]
            raise TrainingError(
                f"{self.directory / tag}: refused to load, it holds more than tensors and plain "
                f"data ({first})"
            ) from None
        if path is None or CLIENT_KEY not in (client_state or {}):
            raise TrainingError(f"{self.directory / tag}: checkpoint could not be loaded")
        if rng is not None:
            set_rng_state(rng)
        return client_state[CLIENT_KEY]

    def _prune(self, keep_tag: str) -> None:
        tags = self.tags()
        for tag in tags[: max(len(tags) - max(self.keep, 1), 0)]:
            if tag != keep_tag:
                shutil.rmtree(self.directory / tag, ignore_errors=True)
