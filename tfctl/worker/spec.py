"""StageSpec: everything one training stage needs, resolved, in one JSON file.

The orchestrator writes `RUN/stages/<stage>/spec.json`; every rank of the worker reads the same file
(`python -m tfctl.worker spec.json`), so a stage can be re-run or debugged on its own.
"""

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


@dataclass
class OptimizerSpec:
    lr: float = 6e-4
    min_lr: float = 6e-5
    warmup_steps: int = 0
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    # LR schedule position: the paper restarts warmup+cosine every stage (offset 0, total = steps);
    # "continue" runs one schedule over all stages (offset = steps before, total = steps of all stages).
    schedule_offset: int = 0
    schedule_total: int | None = None


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
    global_batch: int  # sequences per optimizer step, whatever the world size
    seq_len: int
    micro_batch: int | None = None  # sequences per rank per micro-step; None: global_batch // world_size
    init_weights: str | None = None  # a model dir to start from (ignored when a checkpoint exists)
    init_optimizer: str | None = None  # optimizer moments grown with the weights (carry), or None (reset)
    seed: int = 1337
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    precision: str = "fp32"  # fp32 | bf16 | fp16
    zero_stage: int = 0
    compile: bool = False
    eval_interval: int = 100
    eval_batches: int = 8
    eval_batch_size: int = 8
    checkpoint_interval: int = 100
    keep_checkpoints: int = 2
    log_interval: int = 1
    # offsets of this stage on the run's cumulative axes (the stages before it)
    tokens_offset: int = 0
    flops_offset: float = 0.0
    device_seconds_offset: float = 0.0
    peak_flops: float | None = None  # per device; None: looked up (GPU table) or measured (CPU)
    growth: dict | None = None  # the growth report that made init_weights; the worker logs it to W&B
    wandb: WandbSpec = field(default_factory=WandbSpec)

    @property
    def tokens_per_step(self) -> int:
        return self.global_batch * self.seq_len

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    def save(self, path: str | Path) -> None:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)

    @classmethod
    def from_dict(cls, values: dict) -> "StageSpec":
        values = dict(values)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown stage spec keys: {', '.join(unknown)}")
        values["optimizer"] = OptimizerSpec(**{**values.get("optimizer", {})})
        values["optimizer"].betas = tuple(values["optimizer"].betas)
        values["wandb"] = WandbSpec(**values.get("wandb", {}))
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> "StageSpec":
        return cls.from_dict(json.loads(Path(path).read_text()))
