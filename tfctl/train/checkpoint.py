"""DeepSpeed checkpoints of a stage under `out_dir/checkpoints/`, with our own progress in client_state.

    checkpoints/
      latest                  the tag of the newest COMPLETE checkpoint (written atomically, after every rank saved)
      step00000020/           DeepSpeed's files (model + optimizer states, one per ZeRO partition)
        rng-rank0.pt ...      each rank's RNG states
      zero_to_fp32.py         DeepSpeed's consolidation script

A crash mid-save leaves `latest` on the previous tag, so resume never sees a half-written checkpoint. The last
`keep` checkpoints are kept. Resume rule (torchtitan's): a checkpoint in the output dir wins over initial weights.
"""

import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tfctl.errors import TrainingError

LATEST = "latest"
CLIENT_KEY = "tfctl"


def tag_for(step: int) -> str:
    return f"step{step:08d}"


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class Checkpointer:
    directory: Path
    keep: int
    rank: int

    def latest_tag(self) -> str | None:
        path = self.directory / LATEST
        if not path.is_file():
            return None
        tag = path.read_text().strip()
        return tag if (self.directory / tag).is_dir() else None

    def save(self, engine, step: int, progress: dict) -> None:
        """Collective: every rank writes its part; rank 0 then points `latest` at it and prunes old tags."""
        import torch.distributed as dist

        tag = tag_for(step)
        try:
            engine.save_checkpoint(str(self.directory), tag=tag, client_state={CLIENT_KEY: progress},
                                   save_latest=False)
            torch.save(rng_state(), self.directory / tag / f"rng-rank{self.rank}.pt")
        except OSError as error:
            raise TrainingError(f"checkpoint save failed at step {step}: {error}") from error
        dist.barrier()
        if self.rank == 0:
            _write_atomic(self.directory / LATEST, tag)
            self._prune(keep_tag=tag)
        dist.barrier()

    def load(self, engine) -> dict | None:
        """Restore model, optimizer and this rank's RNG from `latest`; our progress dict, or None if none."""
        import torch.distributed as dist

        tag = self.latest_tag()
        if tag is None:
            return None
        if self.rank == 0:  # a save that crashed after `latest` was last moved: never resume into it, never keep it
            for stale in self.directory.glob("step*"):
                if stale.is_dir() and stale.name > tag:
                    shutil.rmtree(stale, ignore_errors=True)
        dist.barrier()
        path, client_state = engine.load_checkpoint(str(self.directory), tag=tag, load_optimizer_states=True,
                                                    load_lr_scheduler_states=False)
        if path is None or CLIENT_KEY not in (client_state or {}):
            raise TrainingError(f"{self.directory / tag}: checkpoint could not be loaded")
        rng_file = self.directory / tag / f"rng-rank{self.rank}.pt"
        if rng_file.is_file():
            set_rng_state(torch.load(rng_file, weights_only=False))
        return client_state[CLIENT_KEY]

    def _prune(self, keep_tag: str) -> None:
        tags = sorted(p.name for p in self.directory.iterdir() if p.is_dir() and p.name.startswith("step"))
        for tag in tags[: max(len(tags) - max(self.keep, 1), 0)]:
            if tag != keep_tag:
                shutil.rmtree(self.directory / tag, ignore_errors=True)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
