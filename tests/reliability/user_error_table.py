"""The bad-input table of test_user_errors.py: its inputs, and a runner that works through it in background
threads (started by tests/conftest.py with the session, so it overlaps the other tests)."""

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from tests.reliability.conftest import ENV, RECIPE
from tfctl.run.lock import RunLock

CASES = [
    ("train", "missing.yaml"),
    ("train", "empty"),
    ("train", "garbage.yaml"),
    ("train", "list.yaml"),
    ("train", "good.yaml", "-o", "run_badstate"),
    ("train", "good.yaml", "-o", "afile"),
    ("train", "good.yaml", "-o", "busy"),
    ("plan", "missing.yaml"),
    ("plan", "garbage.yaml"),
    ("grow", "missing", "--to", "2m"),
    ("grow", "empty", "--to", "2m"),
    ("grow", "model_badconfig", "--to", "2m"),
    ("grow", "model_truncated", "--to", "2m", "-o", "grown"),
    ("grow", "run_badstate", "--to", "2m"),
    ("compare", "missing"),
    ("compare", "empty"),
    ("compare", "model_truncated"),
    ("compare", "run_badstate"),
    ("eval", "missing"),
    ("eval", "empty"),
    ("eval", "model_badconfig"),
    ("eval", "model_truncated"),
    ("eval", "run_badstate"),
    ("generate", "model_truncated", "-p", "hi"),
    ("generate", "run_badstate", "-p", "hi"),
    ("data", "prepare", "-s", "missing.txt", "-o", "out"),
    ("data", "prepare", "-s", "bad.jsonl", "-o", "out"),
    ("data", "prepare", "-s", "empty", "-o", "out"),
    ("data", "info", "missing"),
    ("data", "info", "empty"),
    ("data", "info", "data_badmeta"),
    # issue 15: values that used to pass validation or end in a traceback
    ("plan", "good.yaml", "--set", "stages.0.tokens=.inf"),
    ("plan", "good.yaml", "--set", "name=[unclosed"),
    ("plan", "good.yaml", "--set", "name=!!python/object/apply:os.system [echo]"),
    ("plan", "good.yaml", "--set", "name=.."),
    ("train", "good.yaml", "--set", "train.lr=.inf"),
    ("train", "good.yaml", "--set", "stages.0.tokens=1e24b"),
    ("train", "good.yaml", "--set", "stages.0.tokens=1.0e+30"),
    ("train", "good.yaml", "--set", f"seed={2**70}"),
    ("plan", "latin1.yaml"),
    ("plan", "seed_negative.yaml"),
    ("plan", "minimal.yaml"),
    ("plan", "laughs.yaml"),
    ("train", "laughs.yaml"),
    ("grow", "model_ok", "--to", "2m", "--layers", "0"),
    ("grow", "model_nan", "--to", "2m"),
    ("eval", "model_nan"),
    ("generate", "model_nan", "-p", "hi"),
    ("generate", "model_ok", "-p", "hi", "--seed", str(2**70)),
    ("generate", "model_ok", "-p", "hi", "-n", "100000"),
    ("eval", "model_badexport"),
    ("eval", "run_state_string"),
    ("generate", "run_state_null", "-p", "hi"),
    ("compare", "run_state_noresult"),
    ("grow", "run_state_string", "--to", "2m"),
    ("train", "good.yaml", "-o", "run_state_traversal", "--force", "s2"),
    ("train", "good.yaml", "-o", "run_state_absolute", "--force", "s2"),
    ("data", "info", "data_latin1meta"),
]

STATES = {  # state.json of the wrong shape: each refused in one line wherever it is read
    "run_state_string": {"stages": {"s1": "done"}},
    "run_state_null": {"stages": {"s1": None}},
    "run_state_noresult": {"stages": {"s1": {"status": "done"}}},
    "run_state_traversal": {"stages": {"s1": {"status": "pending"}, "../../victim": {"status": "done"}}},
    "run_state_absolute": {"stages": {"/tmp/victim-of-tfctl": {"status": "failed"}}},
}


def make_inputs(root: Path) -> None:
    from tfctl.model import build_model, config_from_dict
    from tfctl.model_dir.weights import save_model_dir

    (root / "empty").mkdir()
    (root / "garbage.yaml").write_text("name: [unclosed")
    (root / "list.yaml").write_text("- 1\n- 2\n")
    (root / "good.yaml").write_text(yaml.safe_dump(RECIPE))
    (root / "afile").write_text("a file where a directory is expected\n")
    (root / "bad.jsonl").write_text('{"text": "fine"}\n{"text": 1\n')
    config = config_from_dict(
        dict(
            family="tokenformer",
            vocab_size=512,
            seq_len=32,
            n_layers=2,
            d_model=32,
            n_heads=2,
            qkv_tokens=16,
            proj_tokens=16,
            ffn_tokens=64,
        )
    )
    model = save_model_dir(build_model(config).state_dict(), config, root / "model_truncated")
    weights = (model / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    (root / "model_badconfig").mkdir()
    (root / "model_badconfig" / "config.json").write_text("{garbage")
    (root / "model_badconfig" / "model.safetensors").write_bytes(weights)
    (root / "run_badstate").mkdir()
    (root / "run_badstate" / "state.json").write_text("this is not JSON")
    (root / "run_badstate" / "recipe.yaml").write_text(yaml.safe_dump(RECIPE))
    (root / "data_badmeta").mkdir()
    (root / "data_badmeta" / "meta.json").write_text("[1, 2")
    (root / "busy").mkdir()
    (root / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (root / "seed_negative.yaml").write_text(yaml.safe_dump({**RECIPE, "seed": -1}))
    (root / "minimal.yaml").write_text("name: minimal\nstages:\n  - {name: s1, param_tokens: 16, steps: 2}\n")
    laughs = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for previous, name in zip("abcdef", "bcdefg", strict=True):
        laughs += f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    (root / "laughs.yaml").write_text(laughs + "name: *g\n")  # ~700 bytes, 9^7 values expanded
    save_model_dir(build_model(config).state_dict(), config, root / "model_ok")
    nan = build_model(config).state_dict()
    nan["embedding.weight"][0, 0] = float("nan")
    save_model_dir(nan, config, root / "model_nan")
    save_model_dir(build_model(config).state_dict(), config, root / "model_badexport")
    (root / "model_badexport" / "export.json").write_text('["not", "an", "object"]')
    for name, state in STATES.items():
        (root / name).mkdir()
        (root / name / "state.json").write_text(json.dumps(state))
        (root / name / "recipe.yaml").write_text(yaml.safe_dump(RECIPE))
    (root / "victim" / "stages").mkdir(parents=True)  # what ../../victim would reach from run/stages/
    (root / "victim" / "important.txt").write_text("keep me\n")
    (root / "data_latin1meta").mkdir()
    (root / "data_latin1meta" / "meta.json").write_bytes(b'{"dtype": "\xff"}')


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


class Table:
    """Runs every case in the background while the test session goes on, `jobs` subprocesses at a time."""

    def __init__(self, root: Path, jobs: int = 1):
        self.root, self.jobs, self.results, self.done = root, jobs, {}, threading.Event()
        make_inputs(root)
        self.lock = RunLock(root / "busy" / ".lock").__enter__()  # a run directory in use by someone else
        self.before = snapshot(root)
        threading.Thread(target=self.run, daemon=True).start()

    def cwd(self, case: tuple) -> Path:
        return self.root / "cwd" / "-".join(case).replace("/", "_")

    def run_case(self, case: tuple) -> None:
        cwd = self.cwd(case)
        cwd.mkdir(parents=True)
        args = [
            str(self.root / a) if (self.root / a).exists() or a.startswith("missing") else a for a in case
        ]
        self.results[case] = subprocess.run(
            [sys.executable, "-m", "tfctl", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, **ENV},
        )

    def run(self) -> None:
        try:
            with ThreadPoolExecutor(self.jobs) as pool:
                list(pool.map(self.run_case, CASES))  # list(): a case that raised fails the whole table
            self.after = snapshot(self.root)
        finally:
            self.lock.__exit__()
            self.done.set()
