"""What a run directory trains: a `RunJob` (its planned stages, their fingerprints, the training settings and
how stage i starts from stage i-1), and the fingerprints that tell a finished stage from a changed one.

Growth runs (tfctl/run/orchestrate.py) and baselines (tfctl/compare/baselines.py) are both RunJobs, trained
by the one stage loop (tfctl/run/stage_loop.py).
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tfctl.recipe.plan import StagePlan
from tfctl.recipe.schema import LaunchSection, Recipe, TrainSection, WandbSection
from tfctl.run.layout import RunDir
from tfctl.run.state import RunState

# How stage `index` starts from the export of the stage before it: (source model dir, out dir, the stage's
# plan, its index, a probe batch for the preservation check) → the growth report.
GrowFn = Callable[[Path, Path, StagePlan, int, object], dict]

# Settings that change how a stage is run or logged but not what it computes: editing them never
# invalidates finished stages.
VOLATILE_TRAIN_SETTINGS = {"checkpoint_interval", "keep_checkpoints", "compile", "peak_flops"}


def fingerprinted_train(train: TrainSection) -> dict:
    """The training settings a stage's weights depend on (the volatile ones left out)."""
    return {k: v for k, v in train.model_dump(mode="json").items() if k not in VOLATILE_TRAIN_SETTINGS}


def cumulative_fingerprints(base: dict, stages: list[dict]) -> list[str]:
    """Stage i's fingerprint: a hash of `base` and stages 0..i — a change to a stage invalidates it and later ones."""
    return [
        hashlib.sha256(json.dumps([base, stages[: i + 1]], sort_keys=True).encode()).hexdigest()[:16]
        for i in range(len(stages))
    ]


@dataclass
class RunJob:
    """What a run directory trains: its planned stages and everything the worker needs besides them."""

    name: str  # the run's name
    dirs: RunDir
    data_dir: Path
    plans: list[StagePlan]
    fingerprints: list[str]
    train: TrainSection
    launch: LaunchSection
    wandb: WandbSection  # its group resolved
    seed: int
    seq_len: int
    grow: GrowFn | None = None  # how stage i > 0 starts from stage i-1 (None: a single-stage run)
    start_from: Path | None = None  # stage 0 grows from this model directory (`from:`) instead of random init
    wandb_config: dict = field(default_factory=dict)  # what W&B shows as the run's config
    wandb_job_type: str = "stage"  # stage | baseline; W&B names a stage "<run dir name>/<stage>"
    retrain_hint: str = "--force {stage}"  # how the user discards a stage's results (tfctl train's way)

    @classmethod
    def for_recipe(cls, recipe: Recipe, run_dir: Path, group: str, **job) -> "RunJob":
        """A job with the recipe's shared settings (train, launch, W&B with its group resolved, seq_len): a
        growth run's and a baseline's alike; `job` gives the rest (name, data, plans, fingerprints, seed...)."""
        wandb = recipe.wandb.model_copy(update={"group": recipe.wandb.group or group})
        return cls(
            dirs=RunDir(run_dir),
            train=recipe.train,
            launch=recipe.launch,
            wandb=wandb,
            seq_len=recipe.data.seq_len,
            **job,
        )

    @property
    def stage_names(self) -> list[str]:
        return [p.name for p in self.plans]


def changed_stages(state: RunState, job: RunJob) -> list[str]:
    """Recorded stages that contradict the job: a different fingerprint, or not in the job at all."""
    prints = dict(zip(job.stage_names, job.fingerprints, strict=True))
    return [
        name
        for name, entry in state.stages().items()
        if name not in prints or entry.get("fingerprint") not in (None, prints[name])
    ]
