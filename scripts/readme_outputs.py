"""Regenerate every output block of README.md from real commands: `make readme-outputs`.

Run it in a fresh clone on an idle machine (it trains recipes/tiny.yaml, its comparisons and the README's
other runs; the outputs show timings). Each `$ command` line of a ```console block runs from the repository
root, in order, in bash with .venv/bin first on PATH, W&B offline and an 80-column width; the lines under it
(up to the next `$ ` line or the block's end) become what it printed. An output the README shortens with
`...` lines keeps that shape: as many first and last lines as before, around one `...`. A command marked
`# offline` runs with HF_HUB_OFFLINE=1. The inputs the examples assume (short.txt, broken.bin, gpt2-like.bin,
plays.parquet, plays-hf/, load_hf.py) are written first and removed at the end; the commands in KEPT need
files this machine does not have, and keep the output the README shows.

    python scripts/readme_outputs.py [--dry-run]     # --dry-run: list what would run, change nothing
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
KEPT = {  # command prefix → why it is not run here
    "tfctl grow ckpt/124m": "needs a trained 124M checkpoint in ckpt/124m",
    "tfctl import TokenFormer-150M/": "needs the released TokenFormer-150M checkpoint and GPT-2's tokenizer",
    "tfctl submit ": "needs a Slurm cluster: sbatch on PATH",
}
INPUTS = ["short.txt", "broken.bin", "gpt2-like.bin", "plays.parquet", "plays-hf", "load_hf.py"]
COMMAND = re.compile(r"^\$ (.*)$")


def write_inputs(readme: str) -> None:
    """The small files the README's examples read, built from the Shakespeare corpus where they need text."""
    import datasets
    import torch

    from tfctl.data.sources import builtin_corpus

    (REPO / "short.txt").write_text("To be, or not to be: that is the question.\n")
    (REPO / "broken.bin").write_bytes(b"not a checkpoint")
    torch.save({"wte.weight": torch.zeros(8, 4), "wpe.weight": torch.zeros(8, 4)}, REPO / "gpt2-like.bin")
    plays = builtin_corpus("shakespeare").paths
    table = datasets.Dataset.from_dict(
        {"title": [p.stem for p in plays], "body": [p.read_text(encoding="utf-8") for p in plays]}
    )
    table.to_parquet(str(REPO / "plays.parquet"))
    table.save_to_disk(str(REPO / "plays-hf"))
    script = readme[readme.index("where `load_hf.py` is") :]
    script = script[script.index("```python\n") + len("```python\n") :]
    (REPO / "load_hf.py").write_text(script[: script.index("```")])


def remove_inputs() -> None:
    for name in INPUTS:
        path = REPO / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def run(command: str) -> list[str]:
    env = {**os.environ, "WANDB_MODE": "offline", "COLUMNS": "80", "TERM": "dumb"}
    env["PATH"] = f"{REPO / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    if command.rstrip().endswith("# offline"):
        env["HF_HUB_OFFLINE"] = env["HF_DATASETS_OFFLINE"] = "1"
    done = subprocess.run(
        ["bash", "-c", command], cwd=REPO, env=env, capture_output=True, text=True, timeout=3600
    )
    return (done.stdout + done.stderr).rstrip("\n").splitlines()


def shortened(new: list[str], old: list[str]) -> list[str]:
    """`new`, cut like `old` when old has `...` lines: its number of first and last lines around one `...`."""
    if "..." not in old:
        return new
    head = old.index("...")
    tail = len(old) - 1 - max(i for i, line in enumerate(old) if line == "...")
    if head + tail >= len(new):
        return new
    return [*new[:head], "...", *(new[len(new) - tail :] if tail else [])]


def regenerate(text: str, dry_run: bool) -> str:
    lines, out, index, in_console = text.split("\n"), [], 0, False
    while index < len(lines):
        line = lines[index]
        out.append(line)
        index += 1
        if line.startswith("```"):
            in_console = line == "```console" if not in_console else False
            continue
        match = COMMAND.match(line) if in_console else None
        if not match:
            continue
        end = index
        while not lines[end].startswith("```") and not COMMAND.match(lines[end]):
            end += 1
        old, command = lines[index:end], match.group(1)
        kept = next((why for prefix, why in KEPT.items() if command.startswith(prefix)), None)
        print(f"{'keep' if kept else 'run '} $ {command}" + (f"  ({kept})" if kept else ""), flush=True)
        if kept or dry_run:
            out.extend(old)
        else:
            out.extend(shortened(run(command), old))
        index = end
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="list the commands, run nothing")
    args = parser.parse_args()
    text = README.read_text()
    if args.dry_run:
        regenerate(text, dry_run=True)
        return
    write_inputs(text)
    try:
        README.write_text(regenerate(text, dry_run=False))
    finally:
        remove_inputs()
    print(f"{README} rewritten: review with `git diff README.md`", file=sys.stderr)


if __name__ == "__main__":
    main()
