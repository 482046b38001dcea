"""`make demo`, timed phase by phase: python -m tfctl.bench.demo [RECIPE]

Runs the demo's two commands — `tfctl train RECIPE -o TMP/runs/NAME`, then `tfctl compare TMP/runs/NAME` —
in a temporary directory with W&B offline (the prepared data cache is the usual one: a first run also
prepares the data), timing each command (wall, and CPU of the command and its processes) and each line it
prints. Each stage and baseline is then split, from its console lines and its metrics.jsonl records
(`wall_seconds` counts from the worker's `main()`):

    process   launch → the worker's main() (interpreter, import torch) + after its stage_end (W&B finish, exit)
    setup     main() → the step-0 evaluation began (spec, DeepSpeed, data, model, engine, W&B init)
    steps     the training steps (their `step_seconds`)
    evals     every evaluation, the step-0 one estimated as the median of the others
    other     the rest of the loop: checkpoints, logging
    export    the last record before `stage_end` → `stage_end` (final/, its manifest)

What a command spends outside its stages (data preparation, growth, the CPU peak, compare's report, figure
and W&B run) is its wall time minus its stages'.
"""

import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tfctl.compare.time_split import stage_time_split

STAGE_LINE = re.compile(r"^\[(?P<stage>[^\]]+)\] (?P<what>training|done)\b")


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(command: list[str], cwd: Path, env: dict) -> dict:
    """Run `command`; its wall and CPU seconds and every output line with the seconds since it started."""
    cpu, started = _children_cpu_seconds(), time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = [(time.perf_counter() - started, line.rstrip("\n")) for line in process.stdout]
    if process.wait() != 0:
        tail = "\n".join(line for _, line in lines[-20:])
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}:\n{tail}")
    return {
        "wall_s": time.perf_counter() - started,
        "cpu_s": _children_cpu_seconds() - cpu,
        "lines": lines,
    }


def stage_windows(lines: list[tuple[float, str]]) -> dict[str, float]:
    """Seconds from each stage's `[stage] training` line to its `[stage] done` line."""
    begun, windows = {}, {}
    for at, line in lines:
        match = STAGE_LINE.match(line)
        if match and match["what"] == "training":
            begun[match["stage"]] = at
        elif match and match["stage"] in begun:
            windows[match["stage"]] = at - begun.pop(match["stage"])
    return windows


def split_stage(records: list[dict], window: float | None = None) -> dict:
    """One stage's seconds by phase, from its metrics records (one uninterrupted attempt; the split is
    `tfctl compare`'s, tfctl/compare/time_split.py) and, when given, its console window (launch → done)."""
    measured = stage_time_split(records)
    if measured is None:
        raise ValueError("the stage's records lack a step-0 evaluation or a stage_end")
    wall = measured.pop("wall")
    split = {"setup": measured.pop("start-up"), **measured}
    if window is not None:
        split = {"process": window - wall, **split, "total": window}
    return split


def metrics_of(run_dir: Path) -> dict[str, list[dict]]:
    records = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        records.setdefault(record.get("stage"), []).append(record)
    return records


def time_demo(recipe: Path, workdir: Path) -> dict:
    name = yaml.safe_load(recipe.read_text())["name"]
    run_dir = workdir / "runs" / name
    env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
    tfctl = [sys.executable, "-m", "tfctl"]
    commands = {
        "train": run_timed([*tfctl, "train", str(recipe.resolve()), "-o", str(run_dir)], workdir, env),
        "compare": run_timed([*tfctl, "compare", str(run_dir)], workdir, env),
    }
    result = {"commands": {}, "stages": {}}
    for command, timed in commands.items():
        windows = stage_windows(timed["lines"])
        dirs = [run_dir] if command == "train" else sorted(workdir.glob(f"runs/{name}.baseline-*"))
        for directory in dirs:
            for stage, records in metrics_of(directory).items():
                if stage in windows:
                    label = stage if command == "train" else f"{directory.name}/{stage}"
                    result["stages"][label] = split_stage(records, windows[stage])
        result["commands"][command] = {
            "wall_s": timed["wall_s"],
            "cpu_s": timed["cpu_s"],
            "outside_stages_s": timed["wall_s"] - sum(windows.values()),
            "prepared_data": any("preparing the data" in line for _, line in timed["lines"]),
        }
    return result


PHASES = ("process", "setup", "steps", "evals", "other", "export", "total")


def render(result: dict) -> str:
    rows = [["stage", *PHASES]]
    for label, split in result["stages"].items():
        rows.append([label, *(f"{split[phase]:.1f}" for phase in PHASES)])
    width = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, width, strict=True))
        )
        for row in rows
    ]
    total = sum(c["wall_s"] for c in result["commands"].values())
    for command, timed in result["commands"].items():
        lines.append(
            f"tfctl {command}: {timed['wall_s']:.1f} s wall, {timed['cpu_s']:.1f} s CPU; outside its stages "
            f"{timed['outside_stages_s']:.1f} s{' (data prepared)' if timed['prepared_data'] else ''}"
        )
    load = result.get("load_average", {})
    lines.append(
        f"demo: {total:.1f} s; load average at the start {load.get('start')}, at the end {load.get('end')}"
    )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    recipe = Path(argv[0] if argv else "recipes/tiny.yaml")
    load_average_start = [round(value, 2) for value in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="tfctl-demo-") as tmp:
        result = time_demo(recipe, Path(tmp))
    result["load_average"] = {"start": load_average_start, "end": [round(v, 2) for v in os.getloadavg()]}
    print(render(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
