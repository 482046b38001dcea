"""Build the example lm-eval tasks of the README from the Shakespeare corpus: `shakespeare_mc` (which line
comes next, 4 choices) and `shakespeare_ppl` (rolling perplexity over 15-line passages). The data files are
committed; this rewrites them identically. The tests build the same tasks, smaller, with `write_tasks`
(tests/interop/conftest.py).

    python examples/tasks/build.py          # then, from the repository root:
    tfctl eval runs/tiny --tasks shakespeare_mc --include-path examples/tasks --limit 50
"""

import json
import random
from pathlib import Path

from tfctl.data.sources import builtin_corpus

HERE = Path(__file__).resolve().parent
TASKS = ("shakespeare_mc", "shakespeare_ppl")  # HERE/<task>.yaml, each over a data file of HERE


def write_data(out: Path, choices: int = 100, passages: int = 50) -> None:
    """`out`/mc.jsonl (`choices` questions: a line, the next line and 3 others) and `out`/ppl.jsonl
    (`passages` passages of 15 lines) from the first two plays; fewer of them are the first lines of more."""
    corpus = "\n".join(path.read_text(encoding="utf-8") for path in builtin_corpus("shakespeare").paths[:2])
    lines = [line.strip() for line in corpus.splitlines() if 20 < len(line.strip()) < 60]
    rng = random.Random(0)
    with (out / "mc.jsonl").open("w") as f:
        for i in range(0, 20 * choices, 20):
            wrong = rng.sample(lines, 3)
            f.write(json.dumps({"context": lines[i], "choices": [lines[i + 1], *wrong], "gold": 0}) + "\n")
    with (out / "ppl.jsonl").open("w") as f:
        for i in range(0, 15 * passages, 15):
            f.write(json.dumps({"text": "\n".join(lines[i : i + 15])}) + "\n")


def write_tasks(out: Path, choices: int = 100, passages: int = 50) -> Path:
    """Both tasks in `out`: their data (`write_data`) and task files reading it there. Returns `out`."""
    write_data(out, choices, passages)
    for task in TASKS:
        text = (HERE / f"{task}.yaml").read_text(encoding="utf-8")
        (out / f"{task}.yaml").write_text(text.replace("examples/tasks/", f"{out}/"), encoding="utf-8")
    return out


if __name__ == "__main__":
    write_data(HERE)
