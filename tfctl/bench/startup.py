"""Stage start-up: one 1-rank CPU stage of a tiny model, from its launch to its first optimizer step.

    python -m tfctl.bench.startup            # launch → first step, launch → exit (medians), then the phases
    python tfctl/bench/startup.py --phases SPEC.json   # the phases alone, in this fresh interpreter

`stage_startup()` launches the stage as `tfctl train` does (`run_stage`, launcher `local`) and watches the
run's metrics.jsonl for the first `train` record: the seconds to it are what a stage costs before it trains,
and the worker's CPU seconds at that moment are the same cost on a loaded machine, where wall-clock time
mostly measures the other processes. `startup_phases()` repeats the worker's start in a fresh interpreter,
timing each phase (wall and CPU seconds) — imports, the DeepSpeed comm backend, setup (data, model, engine),
then the step-0 evaluation, the first step and its checkpoint — and says whether `torch._dynamo` (1.5 s of
imports no eager stage needs) was loaded on the way.
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from tfctl.launch import build_env, run_stage
from tfctl.recipe.schema import LaunchSection

TINY_MODEL = dict(
    family="tokenformer",
    vocab_size=512,
    seq_len=32,
    n_layers=2,
    d_model=32,
    n_heads=2,
    qkv_tokens=32,
    proj_tokens=32,
    ffn_tokens=64,
)


def write_tiny_spec(out_dir: Path, steps: int = 4) -> Path:
    """A stage spec of a ~30k-parameter Tokenformer on Shakespeare (BPE 512), W&B off."""
    from tfctl.data import DataSettings, prepare_dataset
    from tfctl.data.settings import DEFAULT_SEED
    from tfctl.stage.spec import StageSpec

    data_dir = prepare_dataset(DataSettings(source="shakespeare", tokenizer="bpe:512"), progress=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = StageSpec.from_dict(
        dict(
            run_name="startup",
            stage="s1",
            stage_index=0,
            data_dir=str(data_dir),
            out_dir=str(out_dir),
            metrics_path=str(out_dir / "metrics.jsonl"),
            steps=steps,
            global_batch=8,
            seq_len=32,
            model=TINY_MODEL,
            schedule=dict(lr=3e-3, min_lr=3e-4, warmup_steps=1),
            seed=DEFAULT_SEED,
            train=dict(
                eval_interval=steps,
                eval_batches=2,
                eval_batch_size=4,
                checkpoint_interval=steps,
                keep_checkpoints=1,
                peak_flops=1e10,
            ),
            wandb=dict(mode="disabled", dir=str(out_dir)),
        )
    )
    spec.save(out_dir / "spec.json")
    return out_dir / "spec.json"


def _workers_cpu_seconds() -> float:
    """User + system seconds of this process's children that are alive (the launched worker)."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def _first_train_record(metrics: Path, stop: threading.Event) -> dict:
    """When the first `train` record appears: perf_counter then, and the worker's CPU seconds so far."""
    while not stop.is_set():
        if metrics.is_file() and '"kind": "train"' in metrics.read_text():
            return {"at": time.perf_counter(), "cpu_s": _workers_cpu_seconds()}
        time.sleep(0.01)
    return {}


def launch_once(out_dir: Path) -> dict:
    """One stage launched as `tfctl train` launches it: seconds to its first step and to its exit."""
    spec = write_tiny_spec(out_dir)
    first, stop = {}, threading.Event()
    watcher = threading.Thread(
        target=lambda: first.update(_first_train_record(out_dir / "metrics.jsonl", stop)), daemon=True
    )
    settings = LaunchSection(launcher="local")
    cpu_before = _children_cpu_seconds()
    started = time.perf_counter()
    watcher.start()
    code = run_stage(
        spec, settings, log_path=out_dir / "worker.log", env={"WANDB_MODE": "disabled"}, echo=False
    )
    ended = time.perf_counter()
    stop.set()
    watcher.join()
    if code != 0 or first.get("at") is None:
        raise RuntimeError(f"the start-up stage failed (exit {code}); see {out_dir / 'worker.log'}")
    return {
        "to_first_step_s": first["at"] - started,
        "to_first_step_cpu_s": first["cpu_s"],  # the worker's user + system time until then
        "stage_s": ended - started,
        "stage_cpu_s": _children_cpu_seconds() - cpu_before,  # the worker's user + system time, whole stage
    }


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def stage_startup(repeats: int = 3) -> dict:
    """Medians over `repeats` launches (each a fresh process), plus the phases of one more fresh worker."""
    with tempfile.TemporaryDirectory(prefix="tfctl-startup-") as tmp:
        runs = [launch_once(Path(tmp) / f"run{i}") for i in range(repeats)]
        phases = run_phases(write_tiny_spec(Path(tmp) / "phases"))
    return {
        "to_first_step_s": statistics.median(r["to_first_step_s"] for r in runs),
        "to_first_step_cpu_s": statistics.median(r["to_first_step_cpu_s"] for r in runs),
        "stage_s": statistics.median(r["stage_s"] for r in runs),
        "stage_cpu_s": statistics.median(r["stage_cpu_s"] for r in runs),
        "runs": runs,
        "phases": phases["phases"],
        "dynamo_imported": phases["dynamo_imported"],
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


def run_phases(spec: Path) -> dict:
    """`startup_phases` in a fresh interpreter (imports are part of what is measured), this file run as a
    script: `-m tfctl.bench.startup` would import the bench package, and torch with it, before the first mark."""
    run_as_script = (
        "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    command = [sys.executable, "-c", run_as_script, __file__, "--phases", str(spec)]
    env = build_env(LaunchSection(launcher="local"), {"WANDB_MODE": "disabled"}, gpu=False)  # as launched
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def startup_phases(spec_path: str) -> dict:
    """The worker's start, phase by phase, in this interpreter. The imports are timed, so they happen here."""
    marks, begun = [], (time.perf_counter(), time.process_time())

    def mark(name: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        last = marks[-1] if marks else {"_wall": begun[0], "_cpu": begun[1]}
        marks.append({"phase": name, "wall_s": wall - last["_wall"], "cpu_s": cpu - last["_cpu"]})
        marks[-1].update(_wall=wall, _cpu=cpu)

    import torch  # noqa: F401

    mark("import torch")
    import deepspeed  # noqa: F401

    mark("import deepspeed")
    from tfctl.stage.spec import StageSpec
    from tfctl.worker.main import fill_single_process_env, init_distributed
    from tfctl.worker.stage import StageTrainer

    mark("import tfctl.worker")
    fill_single_process_env()
    init_distributed()
    mark("DeepSpeed comm backend (init_distributed)")
    trainer = StageTrainer(StageSpec.load(spec_path), max_steps_this_run=1)
    trainer.setup()
    mark("setup: data, model, optimizer, engine")
    trainer.train()
    mark("step-0 eval, first step, its checkpoint")
    return {
        "phases": [{k: v for k, v in m.items() if not k.startswith("_")} for m in marks],
        "dynamo_imported": "torch._dynamo" in sys.modules,
    }


def main(argv: list[str]) -> None:
    if argv[:1] == ["--phases"]:
        print(json.dumps(startup_phases(argv[1])))
        return
    result = stage_startup()
    print(
        f"launch → first optimizer step: {result['to_first_step_s']:.2f} s "
        f"({result['to_first_step_cpu_s']:.2f} s CPU; median of {len(result['runs'])})"
    )
    print(f"launch → worker exit:          {result['stage_s']:.2f} s ({result['stage_cpu_s']:.2f} s CPU)")
    for phase in result["phases"]:
        print(f"  {phase['phase']:42s} {phase['wall_s']:6.2f} s wall {phase['cpu_s']:6.2f} s CPU")
    print(f"torch._dynamo imported: {'yes' if result['dynamo_imported'] else 'no'}")
    print(f"load average (1, 5, 15 min) at the end: {result['load_average']}")


if __name__ == "__main__":
    main(sys.argv[1:])
