"""Build the example lm-eval tasks of the README from the Shakespeare corpus (as tests/interop/conftest.py
builds its own): `shakespeare_mc` (which line comes next, 4 choices) and `shakespeare_ppl` (rolling
perplexity over 15-line passages). The data files are committed; this rewrites them identically.

    python examples/tasks/build.py          # then, from the repository root:
    tfctl eval runs/tiny --tasks shakespeare_mc --include-path examples/tasks --limit 50
"""

import json
import random
from pathlib import Path

from tfctl.data.sources import builtin_corpus

HERE = Path(__file__).resolve().parent


def main() -> None:
    corpus = "\n".join(path.read_text(encoding="utf-8") for path in builtin_corpus("shakespeare").paths[:2])
    lines = [line.strip() for line in corpus.splitlines() if 20 < len(line.strip()) < 60]
    rng = random.Random(0)
    with (HERE / "mc.jsonl").open("w") as f:
        for i in range(0, 2000, 20):
            wrong = rng.sample(lines, 3)
            f.write(json.dumps({"context": lines[i], "choices": [lines[i + 1], *wrong], "gold": 0}) + "\n")
    with (HERE / "ppl.jsonl").open("w") as f:
        for i in range(0, 750, 15):
            f.write(json.dumps({"text": "\n".join(lines[i : i + 15])}) + "\n")


if __name__ == "__main__":
    main()
