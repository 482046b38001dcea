"""The bad-input table of test_user_errors.py: its inputs, and a runner that works through it in a background
thread (started by conftest.py at the first reliability test, so it overlaps the training tests)."""

import os
import subprocess
import sys
import threading
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
]


def make_inputs(root: Path) -> None:
    from tfctl.model import build_model, config_from_dict
    from tfctl.model_dir import save_model_dir

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


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


class Table:
    """Runs every case in a background thread while the test session goes on."""

    def __init__(self, root: Path):
        self.root, self.results, self.done = root, {}, threading.Event()
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
            for case in CASES:  # one at a time: the training tests have the other core
                self.run_case(case)
            self.after = snapshot(self.root)
        finally:
            self.lock.__exit__()
            self.done.set()
