import subprocess
import sys

import pytest

from tests.conftest import RECIPES

COMMANDS = [
    [],
    ["train"],
    ["plan"],
    ["submit"],
    ["grow"],
    ["compare"],
    ["eval"],
    ["generate"],
    ["export"],
    ["import"],
    ["data"],
    ["data", "prepare"],
    ["data", "info"],
]

PROBE = """
import sys
from tfctl.cli import app
try:
    app({args!r} + ["--help"], standalone_mode=False)
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "deepspeed", "wandb", "transformers", "lm_eval", "datasets") if m in sys.modules)
print("HEAVY:" + ",".join(heavy))
"""


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "tfctl")
def test_help_is_light_and_has_examples(args):
    """`tfctl [COMMAND] --help` must not import torch, deepspeed, wandb, transformers, lm_eval or datasets."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("HEAVY:"), result.stdout[-300:]
    if args and args != ["data"]:
        assert "Example" in result.stdout or "example" in result.stdout


MISTAKE = """
import sys
from tfctl.cli import main
try:
    main({args!r})
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in ("torch", "deepspeed", "wandb", "transformers", "lm_eval", "datasets") if m in sys.modules)
print(f"EXIT:{{code}} HEAVY:" + ",".join(heavy))
"""


@pytest.mark.parametrize(
    "args",
    [
        ["eval", "{missing}"],
        ["generate", "{missing}", "-p", "hi"],
        ["generate", "{missing}", "-p", "hi", "-n", "100000"],
        ["grow", "{missing}", "--to", "2m"],
        ["compare", "{missing}"],
        ["export", "{missing}", "--hf", "{out}"],
        ["train", str(RECIPES / "tiny.yaml"), "-o", "{file}"],
        ["submit", str(RECIPES / "tiny.yaml"), "-o", "{file}", "-N", "1", "-g", "1", "-t", "60"],
    ],
    ids=lambda a: " ".join(a[:1] + a[2:]),
)
def test_a_wrong_path_or_option_is_refused_before_torch_loads(args, tmp_path):
    """A user's mistake is one line in a moment: the commands check their arguments before they import torch
    (or deepspeed, lm_eval, transformers)."""
    (tmp_path / "file").write_text("a file where a run directory is expected\n")
    paths = {"missing": tmp_path / "missing", "out": tmp_path / "out", "file": tmp_path / "file"}
    args = [arg.format(**paths) for arg in args]
    result = subprocess.run(
        [sys.executable, "-c", MISTAKE.format(args=args)], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "EXIT:2 HEAVY:", result.stdout[-300:] + result.stderr[-3000:]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: "), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
