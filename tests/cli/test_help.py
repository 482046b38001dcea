import subprocess
import sys

import pytest

COMMANDS = [
    [],
    ["train"],
    ["plan"],
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
