"""python -m tfctl.bench [--quick] [--device cuda] [--out docs/benchmarks.md] [--json results.json]

One section alone: python -m tfctl.bench.step_overhead (the worker's step vs a bare loop),
python -m tfctl.bench.growth (tfctl grow vs the raw write), python -m tfctl.bench.startup."""

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path

from tfctl.bench.report import console, markdown
from tfctl.bench.suite import BenchConfig, run_suite

SWITCHES = ("compile", "layers", "growth", "data", "startup", "step_overhead")  # sections --no-X skips
NOTES_FILE = Path(__file__).with_name("notes.md")  # hand-written findings appended to docs/benchmarks.md


def parse(argv: list[str]) -> tuple[BenchConfig, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m tfctl.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny shapes, 2 rounds, no growth: a smoke run")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--out", default="docs/benchmarks.md", help="the markdown report ('' for none)")
    parser.add_argument("--json", default="", help="also write the raw results here")
    for field in ("d_model", "n_layers", "n_heads", "seq_len", "batch", "vocab_size", "rounds", "warmup"):
        parser.add_argument(f"--{field.replace('_', '-')}", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    for switch in SWITCHES:
        parser.add_argument(f"--no-{switch.replace('_', '-')}", action="store_true", help=f"skip {switch}")
    parser.add_argument("--fp32-only", action="store_true", help="skip bf16")
    parser.add_argument(
        "--force-bf16", action="store_true", help="run bf16 steps even where bf16 matmuls are slow"
    )
    parser.add_argument("--profile", action="store_true", help="torch.profiler top ops of one eager step")
    args = parser.parse_args(argv)
    overrides = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(BenchConfig)
        if getattr(args, field.name, None) is not None and field.name not in SWITCHES
    }
    overrides.update({switch: False for switch in SWITCHES if getattr(args, f"no_{switch}")})
    overrides["force_bf16"], overrides["profile"] = args.force_bf16, args.profile
    if args.fp32_only:
        overrides["dtypes"] = ("fp32",)
    config = BenchConfig.quick(**overrides) if args.quick else BenchConfig(**overrides)
    return config, args


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    config, args = parse(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    results = run_suite(config, say=lambda text: print(text, file=sys.stderr, flush=True))
    print(console(results))
    command = shlex.join(["python", "-m", "tfctl.bench", *argv])
    if args.out:
        notes = NOTES_FILE.read_text() if NOTES_FILE.exists() and not args.quick else ""
        Path(args.out).write_text(markdown(results, command, notes))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
