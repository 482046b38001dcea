"""`make gpu-check` (python -m tfctl.bench.gpu_check): everything tfctl has never run without a GPU, in one
command of at most ~8 minutes on one GPU, written to docs/gpu.md.

    1  peak      bf16 matmul FLOP/s (the MFU denominator of the table below)
    2  step      the training-step table at the 124M shape (reference GPT, Transformer, Tokenformer; eager and
                 compiled; bf16) with MFU: tfctl.bench.training, the same code as `make bench`
    3  train     a 2-stage recipe, 124M (the paper's preset, 576 parameter tokens) → 354M (2140), a few hundred
                 steps each, through DeepSpeed ZeRO-1 bf16 with FusedAdam and `optimizer: carry`
    4  grow      `tfctl grow` of the 354M result to 757M, with its optimizer moments (--optimizer carry)
    5  export    `tfctl export --hf` of the grown model
    6  eval      `tfctl eval` of the grown model on the run's validation batches

Every check runs even when an earlier one failed (unless it needs that one's output); the exit status is 1
when any failed. Without a GPU it runs nothing: it says so, prints what it would run (the list above, the
recipe and the commands: what --dry-run prints) and exits 0.
"""

import argparse
import dataclasses
import json
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

import yaml

RECIPE = {
    "name": "gpu-check",
    "seed": 1337,
    "data": {"source": "shakespeare", "tokenizer": "bpe:8192", "seq_len": 1024},
    "model": {"d_model": 768, "n_layers": 12, "n_heads": 12},
    "stages": [
        {"name": "124m", "param_tokens": 576, "steps": 300},  # the paper's 124M preset
        {"name": "354m", "param_tokens": 2140, "steps": 200, "optimizer": "carry"},  # its 354M
    ],
    "train": {
        "global_batch": 16,
        "micro_batch": 8,
        "lr": 6.0e-4,
        "min_lr": 6.0e-5,
        "warmup": 0.05,
        "precision": "bf16",
        "zero_stage": 1,
        "eval_interval": 100,
        "eval_batches": 8,
        "eval_batch_size": 8,
        "checkpoint_interval": 100,
    },
    "wandb": {"mode": "disabled"},
    "baseline": {"name": "scratch"},
}
STEP_SHAPE = dict(d_model=768, n_layers=12, n_heads=12, seq_len=1024, batch=8, vocab_size=50304)
GROW_TO = "757m"
TIMEOUT = 600  # seconds per command


@dataclasses.dataclass
class Checks:
    """What the checks run on: the GPU's by default; the tests run the same code on a tiny CPU variant."""

    recipe: dict = dataclasses.field(default_factory=lambda: RECIPE)
    step_shape: dict = dataclasses.field(default_factory=lambda: STEP_SHAPE)
    grow_to: str = GROW_TO
    device: str = "cuda"
    compile: bool = True

    def commands(self, work: Path) -> dict[str, list[str]]:
        """The tfctl commands of checks 3-6, as a user would type them."""
        tfctl = [sys.executable, "-m", "tfctl"]
        run, grown = work / "run", work / f"grown-{self.grow_to}"
        last = run / "stages" / self.recipe["stages"][-1]["name"] / "final"
        return {
            "train": [*tfctl, "train", str(work / f"{self.recipe['name']}.yaml"), "-o", str(run), "--json"],
            "grow": [
                *tfctl,
                "grow",
                str(last),
                "--to",
                self.grow_to,
                "--optimizer",
                "carry",
                "-o",
                str(grown),
            ]
            + ["--json"],
            "export": [*tfctl, "export", str(grown), "--hf", str(work / "hf")],
            "eval": [*tfctl, "eval", str(grown), "--data", str(run / "data"), "--json"],
        }


def dry_run(work: Path) -> str:
    lines = [
        __doc__.split("\n\n")[1].rstrip(),
        "",
        f"step table shape: {STEP_SHAPE}, bf16, eager and compiled",
    ]
    lines += [
        "",
        f"recipe ({work / 'gpu-check.yaml'}):",
        yaml.safe_dump(RECIPE, sort_keys=False).rstrip(),
        "",
    ]
    lines += [f"{name}: {' '.join(command)}" for name, command in Checks().commands(work).items()]
    return "\n".join(lines)


def run_command(command: list[str]) -> dict:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    record = {"seconds": time.perf_counter() - started, "exit_code": result.returncode}
    if result.returncode != 0:
        raise RuntimeError(f"exit {result.returncode}: {(result.stderr.strip().splitlines() or [''])[-1]}")
    try:
        record["json"] = json.loads(result.stdout)
    except ValueError:
        record["stdout_tail"] = result.stdout[-2000:]
    return record


def check_peak_and_steps(checks: Checks) -> tuple[dict, dict]:
    from tfctl.bench.suite import BenchConfig, measure_peaks, peak_cases
    from tfctl.bench.training import bench_training

    config = BenchConfig(
        device=checks.device, dtypes=("bf16",), force_bf16=True, layers=False, growth=False, data=False,
        startup=False, compile=checks.compile, **checks.step_shape,
    )  # fmt: skip
    peaks = measure_peaks(config)
    rows = bench_training(config, peaks, peak_cases(config), ["bf16"])
    return peaks, {"training": rows}


def run_checks(checks: Checks, work: Path, say=print) -> tuple[dict, dict]:
    """Every check in order; ({check: its result}, {check: why it failed}). A failure skips only the checks
    that need its output."""
    work.mkdir(parents=True, exist_ok=True)
    (work / f"{checks.recipe['name']}.yaml").write_text(yaml.safe_dump(checks.recipe, sort_keys=False))
    results, failures = {"environment": environment()}, {}
    try:
        results["peak"], results["step"] = check_peak_and_steps(checks)
    except Exception as error:  # noqa: BLE001 — a check's failure is reported, and the others still run
        failures["peak/step"] = f"{type(error).__name__}: {error}"
        traceback.print_exc()
    needs = {"grow": "train", "export": "grow", "eval": "grow"}
    for name, command in checks.commands(work).items():
        if needs.get(name) in failures:
            failures[name] = f"skipped: {needs[name]} failed"
            continue
        say(f"gpu-check: {name}: {' '.join(command)}")
        try:
            results[name] = run_command(command)
        except Exception as error:  # noqa: BLE001
            failures[name] = f"{type(error).__name__}: {error}"
    return results, failures


def environment() -> dict:
    import deepspeed
    import torch

    return {
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "deepspeed": deepspeed.__version__,
        "python": platform.python_version(),
    }


def render(results: dict, failures: dict, seconds: float) -> str:
    from tfctl.bench.report import render as table
    from tfctl.bench.report import training_table

    out = ["# tfctl on a GPU (`make gpu-check`)", ""]
    out += [
        f"Written by `make gpu-check` (tfctl/bench/gpu_check.py) in {seconds / 60:.1f} minutes. The checks:"
    ]
    out += ["", "```", __doc__.split("\n\n")[1].rstrip(), "```", "", "Environment:"]
    out += ["", "```", json.dumps(results.get("environment", {}), indent=2), "```", ""]
    out += ["## Failures", ""] + ([f"- {name}: {why}" for name, why in failures.items()] or ["none"]) + [""]
    if "peak" in results:
        out += ["## bf16 matmul peak", ""]
        out += [f"- {p['case']}: {p['flops_per_s'] / 1e12:.1f} TFLOP/s" for p in results["peak"].values()] + [
            ""
        ]
    if "step" in results:
        out += ["## Training step at the 124M shape (bf16)", "", table(training_table(results["step"])), ""]
    for name in ("train", "grow", "export", "eval"):
        if name in results:
            record = results[name]
            out += [f"## {name} ({record['seconds']:.0f} s)", "", "```"]
            out += [json.dumps(record.get("json", record.get("stdout_tail")), indent=2)[:6000], "```", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfctl.bench.gpu_check", description=__doc__)
    parser.add_argument("--work", default="runs/gpu-check", help="where the run, the grown model and hf/ go")
    parser.add_argument("--out", default="docs/gpu.md", help="the report")
    parser.add_argument("--dry-run", action="store_true", help="print what it would run; run nothing")
    args = parser.parse_args(argv)
    work = Path(args.work).resolve()
    import torch

    if args.dry_run or not torch.cuda.is_available():
        if not args.dry_run:
            print(
                "gpu-check: no GPU here (torch.cuda.is_available() is False): nothing run. On a GPU it runs:\n"
            )
        print(dry_run(work))
        return 0

    started = time.perf_counter()
    results, failures = run_checks(Checks(), work, say=lambda line: print(line, flush=True))
    Path(args.out).write_text(render(results, failures, time.perf_counter() - started))
    print(
        f"gpu-check: {'FAILED: ' + ', '.join(failures) if failures else 'all checks passed'}; see {args.out}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
