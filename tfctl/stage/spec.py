"""StageSpec: everything one training stage needs, resolved, in one JSON file.

The orchestrator writes `RUN/stages/<stage>/spec.json`; every rank of the worker reads the same file
(`python -m tfctl.worker spec.json`), so a stage can be re-run or debugged on its own.

The recipe's `train` section travels as it is (validated by the same schema on both sides, so each
setting and its default exist once, in tfctl/recipe/schema.py); what a stage resolves for itself (its
steps, batch and learning-rate schedule) is spelled out beside it.
"""

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from tfctl.errors import UserError
from tfctl.files import atomic_write_text
from tfctl.recipe.schema import TrainSection


@dataclass
class ScheduleSpec:
    """The stage's learning-rate schedule: linear warmup to `lr`, cosine to `min_lr`.

    The paper restarts warmup+cosine every stage (offset 0, total = the stage's steps); `lr_schedule:
    continue` runs one schedule over all stages (offset = steps before, total = steps of all stages)."""

    lr: float
    min_lr: float
    warmup_steps: int
    offset: int = 0
    total: int | None = None


@dataclass
class WandbSpec:
    mode: str = "offline"  # online | offline | disabled (WANDB_MODE in the environment wins)
    project: str = "tfctl"
    entity: str | None = None
    group: str | None = None  # one group per run dir (a baseline joins its growth run's)
    name: str | None = None  # "<run dir name>/<stage>"
    job_type: str = "stage"  # stage | baseline
    tags: list[str] = field(default_factory=list)
    dir: str | None = None  # where wandb/ goes; default: the run dir
    config: dict = field(default_factory=dict)  # the resolved recipe, logged as the W&B config
    run_id: str | None = None  # the stage's W&B id in its run dir (tfctl.tracking.wandb_ids); None: a new one


@dataclass
class StageSpec:
    run_name: str
    stage: str
    stage_index: int
    model: dict  # a model config dict (tfctl.model.config_from_dict)
    data_dir: str  # a prepared dataset (tfctl.data.load_prepared)
    out_dir: str  # RUN/stages/<stage>: checkpoints/, final/
    metrics_path: str  # RUN/metrics.jsonl (rank 0 appends)
    steps: int
    global_batch: int  # sequences per optimizer step, whatever the world size (the stage's, resolved)
    seq_len: int
    schedule: ScheduleSpec
    train: TrainSection = field(default_factory=TrainSection)  # the recipe's shared training settings
    peak_source: str | None = None  # how train.peak_flops was obtained (recorded with the stage's MFU)
    init_weights: str | None = None  # a model dir to start from (ignored when a checkpoint exists)
    init_optimizer: str | None = None  # optimizer moments grown with the weights (carry), or None (reset)
    seed: int = 1337
    log_interval: int = 1
    # offsets of this stage on the run's cumulative axes (the stages before it)
    tokens_offset: int = 0
    flops_offset: float = 0.0
    device_seconds_offset: float = 0.0
    fingerprint: str | None = None  # the stage's fingerprint, recorded in its checkpoints
    growth: dict | None = None  # the growth report that made init_weights; the worker logs it to W&B
    tau_anneal_steps: int = 0  # > 0: τ moves from its held value to sqrt(n) over these steps (scale_mode anneal); evaluated at its end
    wandb: WandbSpec = field(default_factory=WandbSpec)

    @property
    def tokens_per_step(self) -> int:
        return self.global_batch * self.seq_len

    def to_dict(self) -> dict:
        values = asdict(self)  # dataclasses nest; the pydantic section does not
        values["train"] = self.train.model_dump(mode="json")
        return values

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, self.to_json())

    @classmethod
    def from_dict(cls, values: dict) -> "StageSpec":
        """A spec from its JSON form; ValueError/TypeError for anything that is not one."""
        if not isinstance(values, dict):
            raise ValueError("a stage spec is a JSON object")
        values = dict(values)
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown stage spec keys: {', '.join(unknown)}")
        values["schedule"] = ScheduleSpec(**values.get("schedule", {}))
        values["train"] = TrainSection.model_validate(values.get("train", {}))
        values["wandb"] = WandbSpec(**values.get("wandb", {}))
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> "StageSpec":
        """The spec at `path`, or a one-line UserError naming the file and what is wrong with it."""
        try:
            return cls.from_dict(json.loads(Path(path).read_bytes()))
        except (OSError, ValueError, TypeError, AttributeError) as error:
            reason = error.strerror if isinstance(error, OSError) else str(error).splitlines()[0]
            raise UserError(f"{path}: not a usable stage spec ({reason})") from None
