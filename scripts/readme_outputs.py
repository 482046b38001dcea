"""Regenerate every output block of README.md from real commands: `make readme-outputs`.

Run it in a fresh clone on an idle machine (it trains recipes/tiny.yaml, its comparisons and the README's
other runs; the outputs show timings). Each `$ command` line of a ```console block runs from the repository
root, in order, in bash with .venv/bin first on PATH, W&B offline and an 80-column width; the lines under it
(up to the next `$ ` line or the block's end) become what it printed. A command the README shows without
output still runs (later commands use what it made) and keeps showing none; its exit status is printed here.

An output the README shortens with `...` lines keeps that shape (`shortened`). Its first lines, up to the
first `...`, are as many new lines from the first one with the same key as the old first line (see below;
what the command printed before it, a notice, stays). Each `...` then stands for the new lines up to the
next kept line, which is found by what it says rather than where it is: the last new line with the same
"key" (its `[tag] ` and its text up to the first digit: `[s1] step `, `[scratch] eval at step `). A kept
part in the middle runs to the first new line with its own last line's key; the last one runs to the end, so
a final eval followed by any number of tables keeps them all. A kept line without a usable key falls back to
counting: as many last lines as before. The output is shown whole, with a warning, when a kept part cannot be
placed.

stdout and stderr are read as one stream, in the order they were written, without progress bars
(TQDM_DISABLE and the Hugging Face libraries' switches) and without trailing spaces (a terminal shows
none). A command marked `# offline` runs with HF_HUB_OFFLINE=1. The inputs the examples assume (short.txt,
broken.bin, gpt2-like.bin, plays.parquet, plays-hf/, load_hf.py) are written first and removed at the end;
the commands in KEPT need files this machine does not have, and keep the output the README shows.

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
NO_PROGRESS_BARS = {
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
}


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


def run(command: str) -> tuple[int, list[str]]:
    env = {**os.environ, "WANDB_MODE": "offline", "COLUMNS": "80", "TERM": "dumb", **NO_PROGRESS_BARS}
    env["PATH"] = f"{REPO / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    if command.rstrip().endswith("# offline"):
        env["HF_HUB_OFFLINE"] = env["HF_DATASETS_OFFLINE"] = "1"
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=3600,
    )
    return done.returncode, [line.rstrip() for line in done.stdout.rstrip("\n").splitlines()]


ELISION = "..."
MIN_KEY = 4  # a key shorter than this (a table row, a bare number) says too little to find its line by


def line_key(line: str) -> str:
    """What identifies an output line from one run to the next: its `[tag] ` and its text up to the first
    digit (`[s1] step 98/98 · loss 5.9` → `[s1] step `)."""
    tag = re.match(r"\[[^\]]*\] ", line)
    head = tag.group(0) if tag else ""
    return head + re.match(r"\D*", line[len(head) :]).group(0)


def usable(key: str) -> bool:
    return len(key.strip()) >= MIN_KEY


def place(new: list[str], part: list[str], low: int, high: int, last: bool) -> tuple[int, int] | None:
    """Where the kept lines `part` (after a `...`) are in `new`: (start, end), start in (low, high]; the last
    part runs to the end of `new`. None when they cannot be placed."""
    if not part:
        return (len(new), len(new)) if last else None
    key = line_key(part[0])
    if not usable(key):  # counted: as many last lines as before (only for the last part)
        start = len(new) - len(part)
        return (start, len(new)) if last and low < start <= high else None
    starts = [j for j in range(low + 1, min(high, len(new) - 1) + 1) if line_key(new[j]) == key]
    if not starts:
        return None
    start = starts[-1]
    if last:
        return start, len(new)
    end_key = line_key(part[-1])  # a part in the middle ends at its last line's key, before the next part
    if not usable(end_key):
        end = start + len(part)
        return (start, end) if end <= high + 1 else None
    ends = [j for j in range(start, high + 1) if line_key(new[j]) == end_key]
    return (start, ends[0] + 1) if ends else None


def shortened(new: list[str], old: list[str]) -> list[str] | None:
    """`new`, cut like `old` when old has `...` lines (see the module's doc); None when it cannot be."""
    if ELISION not in old:
        return new
    parts, current = [], []
    for line in old:
        if line == ELISION:
            parts.append(current)
            current = []
        else:
            current.append(line)
    parts.append(current)
    head, rest = parts[0], parts[1:]
    first = line_key(head[0]) if head else ""
    starts = [j for j, line in enumerate(new) if usable(first) and line_key(line) == first]
    head_end = (starts[0] if starts else 0) + len(head)  # a notice printed before it stays
    if head_end >= len(new):
        return new
    spans, high = [], len(new) - 1  # placed from the end: each part before the next one
    for index in range(len(rest) - 1, -1, -1):
        span = place(new, rest[index], head_end - 1, high, last=index == len(rest) - 1)
        if span is None:
            return None
        spans.insert(0, span)
        high = span[0] - 2  # at least one line elided between two kept parts
    out, position = list(new[:head_end]), head_end
    for start, end in spans:
        if start < position:
            return None
        out += [ELISION] * (start > position) + new[start:end]
        position = end
    return out


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
            status, printed = run(command)
            shown = shortened(printed, old) if old else []
            if shown is None:
                print("     cannot shorten its output like the README's: shown whole", flush=True)
                shown = printed
            print(f"     exit {status}, {len(printed)} lines, {len(shown)} shown", flush=True)
            out.extend(shown)
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
