"""StageSpec: everything one training stage needs, resolved, in one JSON file.

The orchestrator writes `RUN/stages/<stage>/spec.json`; every rank of the worker reads the same file
(`python -m tfctl.worker spec.json`), so a stage can be re-run or debugged on its own.

The recipe's `train` section travels as it is (validated by the same schema on both sides, so each
setting and its default exist once, in tfctl/recipe/schema.py), less its learning-rate settings: what a stage
resolves for itself (its steps, batch, seed, learning-rate schedule and τ policy) is spelled out beside it, once.
"""

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from tfctl.errors import UserError
from tfctl.files import atomic_write_text
from tfctl.recipe.schema import TrainSection, WandbSection
from tfctl.recipe.tau import TauPolicy
from tfctl.stage.schedule import CosineSchedule

# train's settings that the stage's `schedule` holds resolved: not written twice (older specs have them: ignored)
SCHEDULE_SETTINGS = ("lr", "min_lr", "warmup", "lr_schedule")
# how older specs said `tau`: an anneal's steps, 0 for none (the model config's τ, held); read, never written
OLDER_TAU = "tau_anneal_steps"


def _section_default(name: str):
    return WandbSection.model_fields[name].get_default(call_default_factory=True)


@dataclass
class WandbSpec:
    """The recipe's `wandb` section with what the orchestrator resolved (mode, group, names, ids). A spec
    written by hand may leave any of it out: the section's defaults apply (tfctl/recipe/schema.py)."""

    mode: str | None = _section_default("mode")  # online | offline | disabled, resolved (WANDB_MODE wins)
    project: str = _section_default("project")
    entity: str | None = _section_default("entity")
    group: str | None = None  # one group per run dir (a baseline joins its growth run's)
    name: str | None = None  # "<run dir name>/<stage>"
    job_type: str = "stage"  # stage | baseline
    tags: list[str] = field(default_factory=lambda: _section_default("tags"))
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
    schedule: CosineSchedule  # the stage's learning rates, resolved from the recipe's train/stage settings
    train: TrainSection = field(default_factory=TrainSection)  # the recipe's shared training settings
    peak_source: str | None = None  # how train.peak_flops was obtained (recorded with the stage's MFU)
    init_weights: str | None = None  # a model dir to start from (ignored when a checkpoint exists)
    init_optimizer: str | None = None  # optimizer moments grown with the weights (carry), or None (reset)
    seed: int = field(kw_only=True)  # the stage's (tfctl.recipe.plan.stage_seed): init, data order
    log_interval: int = 1
    # offsets of this stage on the run's cumulative axes (the stages before it)
    tokens_offset: int = 0
    flops_offset: float = 0.0
    device_seconds_offset: float = 0.0
    fingerprint: str | None = None  # the stage's fingerprint, recorded in its checkpoints
    growth: dict | None = None  # the growth report that made init_weights; the worker logs it to W&B
    tau: TauPolicy | None = (
        None  # τ during the stage, as planned (tfctl/recipe/tau.py); None: the model's, held
    )
    wandb: WandbSpec = field(default_factory=WandbSpec)

    def __post_init__(self):
        if self.tau is None:  # a spec by hand (or older than `tau`): the model config's τ, held
            self.tau = TauPolicy.held_by(self.model)
        self.tau.check(self.model)

    @property
    def tokens_per_step(self) -> int:
        return self.global_batch * self.seq_len

    def to_dict(self) -> dict:
        values = asdict(self)  # dataclasses nest; the pydantic section does not
        values["train"] = self.train.model_dump(mode="json", exclude=set(SCHEDULE_SETTINGS))
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
        unknown = sorted(set(values) - {f.name for f in fields(cls)} - {OLDER_TAU})
        if unknown:
            raise ValueError(f"unknown stage spec keys: {', '.join(unknown)}")
        schedule = dict(values.get("schedule", {}))
        if schedule.get("total") is None:  # a restarted schedule: this stage's steps (how older specs say it)
            schedule["total"] = schedule.get("offset", 0) + values.get("steps", 0)
        values["schedule"] = CosineSchedule(**schedule)
        values["train"] = TrainSection.model_validate(values.get("train", {}))
        values["wandb"] = WandbSpec(**values.get("wandb", {}))
        older = values.pop(OLDER_TAU, 0)
        if isinstance(values.get("tau"), dict):
            values["tau"] = TauPolicy(**values["tau"])
        elif older:
            values["tau"] = TauPolicy("anneal", older)
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> "StageSpec":
        """The spec at `path`, or a one-line UserError naming the file and what is wrong with it."""
        try:
            return cls.from_dict(json.loads(Path(path).read_bytes()))
        except (OSError, ValueError, TypeError, AttributeError) as error:
            reason = error.strerror if isinstance(error, OSError) else str(error).splitlines()[0]
            raise UserError(f"{path}: not a usable stage spec ({reason})") from None
