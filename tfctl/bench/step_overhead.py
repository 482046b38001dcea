"""The worker's training step against a bare torch loop: what a stage pays per step beyond the model.

    python -m tfctl.bench.step_overhead [--rounds 30] [--threads 1 2] [--recipes recipes/tiny.yaml ...]

For every stage of each recipe (the demo's recipes/tiny.yaml and the study's recipes/cpu-study.yaml) and every
thread count, two cases on the same model (same seed), the same batches and the same optimizer settings:

    worker  `StageTrainer.run_step` of a set-up 1-rank CPU stage: the LR and τ setters, the sampler, the
            DeepSpeed engine's forward/backward/step (grad clipping included), the loss and grad-norm read-outs,
            the peak check and the step's record (metrics.jsonl, the console; W&B off: every case's trainer lives
            in this one process, and W&B runs are not meant to be many at once in one)
    bare    `model(x, y); loss.backward(); clip_grad_norm_; AdamW.step(); zero_grad` on batches drawn up front

All cases run round-robin in one process (every case once per round, the thread count set before each), so
load from other processes slows them alike; the row is the ratio of the medians, wall-clock and process CPU
time. The target (issue 28) is worker ≤ 1.15x bare. The worker's console lines go to a temporary file (as
they go to worker.log when the orchestrator launches a stage). That process has the environment `tfctl
train` gives a stage (GOMP_SPINCOUNT=3000: OpenMP threads spin briefly at a barrier, then sleep, which keeps a
loaded machine usable); `--here` measures in the current process as its environment is, e.g.
`OMP_WAIT_POLICY=PASSIVE python -m tfctl.bench.step_overhead --here` for threads that sleep at once, or
`env -u GOMP_SPINCOUNT python -m tfctl.bench.step_overhead --here` for libgomp's default (a long spin).
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

RECIPES = ("recipes/tiny.yaml", "recipes/cpu-study.yaml")
THREADS = (1, 2)
TARGET = 1.15
LONG = 10**9  # steps / intervals that never come: the timed steps never evaluate, checkpoint or finish


def stage_specs(recipe_path: str | Path, workdir: Path) -> list:
    """One StageSpec per stage of the recipe, as the orchestrator would write it (fresh weights), run for ever."""
    from tfctl.data import load_prepared
    from tfctl.model import config_to_dict
    from tfctl.recipe.load import load_recipe
    from tfctl.recipe.plan import plan_stages, stage_seed
    from tfctl.run.orchestrate import prepare_data
    from tfctl.stage.schedule import CosineSchedule
    from tfctl.stage.spec import StageSpec, WandbSpec

    recipe = load_recipe(recipe_path)
    data_dir = prepare_data(recipe)
    specs = []
    for index, plan in enumerate(plan_stages(recipe, load_prepared(data_dir).vocab_size)):
        out = workdir / f"{recipe.name}-{plan.name}"
        train = recipe.train.model_copy(
            update={"peak_flops": 1e11, "eval_interval": LONG, "checkpoint_interval": LONG}
        )
        specs.append(
            StageSpec(
                run_name=recipe.name,
                stage=plan.name,
                stage_index=index,
                model=config_to_dict(plan.config),
                data_dir=str(data_dir),
                out_dir=str(out),
                metrics_path=str(out / "metrics.jsonl"),
                steps=LONG,
                global_batch=plan.global_batch,
                seq_len=recipe.data.seq_len,
                schedule=CosineSchedule(plan.lr, plan.min_lr, plan.warmup_steps, total=LONG),
                train=train,
                seed=stage_seed(recipe.seed, index),
                wandb=WandbSpec(mode="disabled", dir=str(out)),
            )
        )
    return specs


def worker_case(spec):
    """A set-up StageTrainer and a call that runs its next step."""
    from tfctl.worker.stage import StageTrainer

    trainer = StageTrainer(spec)
    trainer.setup()
    return trainer, lambda: trainer.run_step(trainer.progress.step + 1, LONG)


def bare_case(spec, batches: int = 64):
    """The same model, optimizer settings and batches in a plain loop."""
    from tfctl.data import TokenSampler, load_prepared
    from tfctl.model import build_model, config_from_dict
    from tfctl.worker.optimizer import build_optimizer

    torch.manual_seed(spec.seed)
    model = build_model(config_from_dict(spec.model))
    optimizer = build_optimizer(model, spec, "cpu")
    sampler = TokenSampler(
        load_prepared(spec.data_dir).tokens("train"), spec.seq_len, spec.global_batch, spec.seed
    )
    drawn = [next(sampler) for _ in range(batches)]
    clip, count = spec.train.grad_clip, [0]

    def step() -> None:
        x, y = drawn[count[0] % batches]
        count[0] += 1
        _, loss = model(x, y)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def with_threads(threads: int, call):
    def run() -> None:
        torch.set_num_threads(threads)
        call()

    return run


def measure(recipes=RECIPES, threads=THREADS, rounds: int = 30, warmup: int = 3, say=print):
    """Rows of (recipe, stage, threads): median step of worker and bare, wall and CPU, and their ratios."""
    from tfctl.bench.measure import interleaved_medians
    from tfctl.worker.main import fill_single_process_env, init_distributed

    fill_single_process_env()
    init_distributed()
    cases, meta, trainers = {}, {}, []
    with tempfile.TemporaryDirectory(prefix="tfctl-step-overhead-") as tmp:
        console = open(Path(tmp) / "worker.log", "w")
        with contextlib.redirect_stdout(console):
            for recipe in recipes:
                for spec in stage_specs(recipe, Path(tmp)):
                    trainer, worker = worker_case(spec)
                    trainers.append(trainer)
                    bare = bare_case(spec)
                    shape = f"d {trainer.config.d_model}, {trainer.config.n_layers} layers, batch {spec.global_batch} x {spec.seq_len}"
                    for n in threads:
                        key = (spec.run_name, spec.stage, n)
                        meta[key] = {
                            "recipe": str(recipe),
                            "stage": spec.stage,
                            "threads": n,
                            "shape": shape,
                            "param_tokens": trainer.config.qkv_tokens,
                            "vocab_size": trainer.config.vocab_size,
                        }
                        cases[key + ("worker",)] = with_threads(n, worker)
                        cases[key + ("bare",)] = with_threads(n, bare)
            say(f"step overhead: {len(cases)} cases, {rounds} rounds ...")
            timed = interleaved_medians(cases, rounds, warmup)
            for trainer in trainers:
                trainer.close(0)
        console.close()
    rows = []
    for key, info in meta.items():
        worker, bare = timed[key + ("worker",)], timed[key + ("bare",)]
        rows.append(
            {
                **info,
                "worker_s": worker["median_s"],
                "bare_s": bare["median_s"],
                "worker_cpu_s": worker["cpu_median_s"],
                "bare_cpu_s": bare["cpu_median_s"],
                "ratio": worker["median_s"] / bare["median_s"],
                "ratio_cpu": worker["cpu_median_s"] / bare["cpu_median_s"],
                "rounds": rounds,
                "omp_wait_policy": omp_wait_policy(),
            }
        )
    return rows


def render(rows: list[dict]) -> str:
    lines = [
        "recipe                  stage threads  worker ms  bare ms  ratio  (CPU: worker ms  bare ms  ratio)"
    ]
    for r in rows:
        lines.append(
            f"{r['recipe']:<23} {r['stage']:>5} {r['threads']:>7}  {1e3 * r['worker_s']:9.1f} {1e3 * r['bare_s']:8.1f} "
            f"{r['ratio']:5.2f}x       {1e3 * r['worker_cpu_s']:9.1f} {1e3 * r['bare_cpu_s']:8.1f} {r['ratio_cpu']:5.2f}x"
        )
    return "\n".join(lines)


def omp_wait_policy() -> str:
    """How this process's OpenMP threads wait at a barrier, in words (libgomp reads it when torch loads)."""
    if "OMP_WAIT_POLICY" in os.environ:
        return f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}"
    if "GOMP_SPINCOUNT" in os.environ:
        return f"GOMP_SPINCOUNT={os.environ['GOMP_SPINCOUNT']}"
    return "libgomp's default (a long spin, then sleep)"


def measure_as_launched(argv: list[str] | None = None) -> list[dict]:
    """`measure` in a fresh process with the environment `tfctl train` gives a 1-rank CPU stage (build_env:
    with several threads, OpenMP threads that spin briefly at a barrier, GOMP_SPINCOUNT), which libgomp reads
    once, when torch loads: the bare loop runs under it too, so the ratio is the worker's own cost."""
    from tfctl.launch import build_env
    from tfctl.recipe.schema import LaunchSection

    multi_threaded = {"OMP_NUM_THREADS": "2"}  # build_env gives such a rank its OpenMP setting
    env = build_env(LaunchSection(launcher="local"), multi_threaded, gpu=False)
    env.pop("OMP_NUM_THREADS")  # the threads are set per case
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        command = [sys.executable, "-m", "tfctl.bench.step_overhead", "--here", "--json", str(out)]
        subprocess.run([*command, *(argv or [])], env=env, check=True, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m tfctl.bench.step_overhead", description=__doc__)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES))
    parser.add_argument("--threads", nargs="+", type=int, default=list(THREADS))
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", default="", help="also write the rows here")
    parser.add_argument(
        "--here",
        action="store_true",
        help="measure in this process, as its environment is (default: a fresh process with the "
        "environment tfctl train gives a stage, GOMP_SPINCOUNT=3000)",
    )
    args = parser.parse_args(argv)
    load = os.getloadavg()
    started = time.perf_counter()
    if args.here:
        rows = measure(
            args.recipes,
            args.threads,
            args.rounds,
            args.warmup,
            say=lambda t: print(t, file=sys.stderr),
        )
    else:
        rows = measure_as_launched(_without_json(argv))
    print(render(rows))
    print(
        f"target: worker <= {TARGET}x bare; OpenMP threads wait by {rows[0]['omp_wait_policy'] if rows else '-'}; "
        f"load average {load[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end; "
        f"{time.perf_counter() - started:.0f} s"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


def _without_json(argv: list[str]) -> list[str]:
    """argv less its `--json PATH` (the child writes its rows to a file of the parent's choosing)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--json":
            skip = True
        elif not arg.startswith("--json="):
            kept.append(arg)
    return kept


if __name__ == "__main__":
    main(sys.argv[1:])
