"""What a finished run directory amounts to: the numbers a comparison needs.

Only finished stages count (`done` in state.json, whose result is the stage's `stage_end` record), so a run
still training is compared on what it has finished. The numbers come from state.json (validated when it is
loaded); metrics.jsonl only adds the eval curve, so a torn or truncated metrics file shortens the curve but
never changes a result.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from tfctl.compare.curves import Curve, eval_curve
from tfctl.errors import UserError
from tfctl.run.layout import RunDir
from tfctl.run.state import DONE, RunState
from tfctl.stage.spec import StageSpec
from tfctl.tracking import read_metrics

BASELINE_FILE = "baseline.json"  # what a baseline sibling run was trained as (tfctl.compare.baselines)


@dataclass
class RunSummary:
    name: str
    path: Path
    kind: str  # growth (a Tokenformer recipe run) | scratch | net2net (baselines) | run (anything else)
    stages: list[str]
    val_loss: float
    val_ppl: float
    params: int
    tokens: int
    flops: float  # cumulative training FLOPs: the sum over the finished stages
    device_hours: float  # Σ over stages of wall time × world size
    wall_hours: float
    mfu: float | None  # model FLOPs of the training steps over (their device-seconds × peak), all stages
    world_size: int
    data: dict = field(default_factory=dict)  # what the numbers are comparable on (see data_identity)
    curve: Curve = field(default_factory=Curve)
    stage_ends: list[dict] = field(default_factory=list)  # per finished stage: cumulative flops, ppl, hours
    seed: int | None = None
    complete: bool = True  # every planned stage finished (LR decayed): only then does it enter a headline

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "path": str(self.path),
            "kind": self.kind,
            "stages": self.stages,
            "val_loss": self.val_loss,
            "val_ppl": self.val_ppl,
            "params": self.params,
            "tokens": self.tokens,
            "flops": self.flops,
            "device_hours": self.device_hours,
            "wall_hours": self.wall_hours,
            "mfu": self.mfu,
            "world_size": self.world_size,
            "data": self.data,
            "curve": self.curve.to_dict(),
            "stage_ends": self.stage_ends,
            "seed": self.seed,
            "complete": self.complete,
        }


@dataclass
class RunGroup:
    """One run trained with one or more seeds (mean ± std over them); runs of one `family` (a from-scratch
    baseline at several sizes) together form the frontier the growth run is measured against."""

    label: str
    kind: str
    runs: list[RunSummary]
    family: str | None = None
    params: int = 0  # the planned size (a family's reference is its largest member, finished or not)

    @property
    def finished(self) -> list[RunSummary]:
        return [r for r in self.runs if r.complete]


def read_json_object(path: Path) -> dict | None:
    """A small JSON file tfctl wrote (baseline.json, meta.json): None when missing, damaged or not an object."""
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def run_kind(run_dir: Path) -> str:
    """growth | scratch | scratch-tokenformer (a scratch baseline of another family) | net2net | run."""
    baseline = run_dir / BASELINE_FILE
    if baseline.exists():
        recorded = read_json_object(baseline)
        kind = recorded.get("kind") if recorded else None
        if not isinstance(kind, str):
            raise UserError(
                f"{baseline}: damaged (not a baseline record); retrain it with `compare --retrain`"
            )
        section = recorded.get("section")
        family = section.get("family", "transformer") if isinstance(section, dict) else "transformer"
        return kind if family == "transformer" else f"{kind}-{family}"
    return "growth" if RunDir(run_dir).recipe.is_file() else "run"


def data_identity(run_dir: Path) -> dict:
    """The prepared dataset (its cache directory is named by source, tokenizer and split), seq_len, eval set."""
    dirs = RunDir(run_dir)
    run_state = RunState.load(dirs.state, run_dir.name)
    state, finished = run_state.data, run_state.finished()
    spec_path = dirs.spec(finished[-1]) if finished else None
    spec = StageSpec.load(spec_path) if spec_path and spec_path.is_file() else None
    data_dir = state.get("data_dir") or (spec.data_dir if spec else None)
    meta_path = Path(data_dir) / "meta.json" if data_dir else None
    meta = (read_json_object(meta_path) or {}) if meta_path else {}
    tokenizer = meta.get("tokenizer")
    return {
        "tokenizer": tokenizer.get("spec") if isinstance(tokenizer, dict) else tokenizer,
        "source": meta.get("source"),
        "seq_len": spec.seq_len if spec else None,
        "data_dir": Path(data_dir).name if data_dir else None,
        "eval_batches": spec.train.eval_batches if spec else None,
        "eval_batch_size": spec.train.eval_batch_size if spec else None,
    }


def finished_run_state(path: str | Path) -> RunState:
    """The state of a run directory with at least one finished stage; otherwise a one-line UserError."""
    run_dir = Path(path)
    if not run_dir.exists():
        raise UserError(f"{run_dir}: no such run directory")
    dirs = RunDir(run_dir)
    if not dirs.is_run():
        raise UserError(f"{run_dir}: not a run directory (no state.json)")
    state = RunState.load(dirs.state, run_dir.name)
    if not state.finished():
        raise UserError(f"{run_dir}: no finished stage yet (run `tfctl train` first)")
    return state


def summarize_run(path: str | Path, name: str | None = None) -> RunSummary:
    """The numbers of a run directory's finished stages; a UserError when there are none."""

    run_dir = Path(path)
    dirs = RunDir(run_dir)
    state = finished_run_state(run_dir)
    stages = state.finished()
    ends = [state.stage(name)["result"] for name in stages]
    records = read_metrics(dirs.metrics)
    last = ends[-1]
    device_seconds = sum(r["wall_seconds"] * r.get("world_size", 1) for r in ends)
    flops = sum(float(r["stage_flops"]) for r in ends)
    weighted = [  # each stage's MFU weighted by the time it covers: its steps (older records: its wall time)
        (r["mfu"], r.get("step_seconds", r["wall_seconds"]) * r.get("world_size", 1))
        for r in ends
        if isinstance(r.get("mfu"), int | float)
    ]
    mfu = (
        sum(m * s for m, s in weighted) / sum(s for _, s in weighted) if weighted and device_seconds else None
    )
    return RunSummary(
        name=name or run_dir.name,
        path=run_dir,
        kind=run_kind(run_dir),
        stages=stages,
        val_loss=float(last["val_loss"]),
        val_ppl=float(last["val_ppl"]),
        params=int(last["params"]),
        tokens=sum(int(r["stage_tokens"]) for r in ends),
        flops=flops,
        device_hours=device_seconds / 3600,
        wall_hours=sum(r["wall_seconds"] for r in ends) / 3600,
        mfu=mfu,
        world_size=int(last.get("world_size", 1)),
        data=data_identity(run_dir),
        curve=eval_curve(records, stages),
        stage_ends=[
            {
                "stage": stage,
                "flops": float(r["flops"]),
                "val_ppl": float(r["val_ppl"]),
                "device_hours": float(r.get("device_seconds", 0.0)) / 3600,
            }
            for stage, r in zip(stages, ends, strict=True)
        ],
        complete=all(entry.get("status") == DONE for entry in state.stages().values()),
    )


COMPARABLE = ("tokenizer", "source", "seq_len", "data_dir")  # data_dir: the prepared data's cache key


def check_comparable(reference: RunSummary, other: RunSummary) -> None:
    """Perplexities are only comparable on the same tokenized validation data at the same context length."""
    for key in COMPARABLE:
        mine, theirs = reference.data.get(key), other.data.get(key)
        if mine is not None and theirs is not None and mine != theirs:
            raise UserError(
                f"{other.path}: not comparable with {reference.path}: {key} "
                f"{_show(theirs)} vs {_show(mine)} (perplexities need the same data, tokenizer "
                f"and seq_len)"
            )


def _show(value) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)
