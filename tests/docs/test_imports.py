"""docs/architecture.md's import rules that a test can read off the source: no upward import, even a lazy one."""

import ast
from pathlib import Path

import pytest

TFCTL = Path(__file__).resolve().parents[2] / "tfctl"

# package -> the packages above it in the pipeline that it must never import
ABOVE = {"tracking": ("recipe", "run", "compare", "evaluate", "cli")}


def imported_modules(path: Path) -> set[str]:
    """Every tfctl module a file imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {name for name in names if name.startswith("tfctl.")}


@pytest.mark.parametrize("package", sorted(ABOVE))
def test_no_upward_imports(package):
    upward = {
        f"{path.relative_to(TFCTL.parent)} imports {name}"
        for path in (TFCTL / package).rglob("*.py")
        for name in imported_modules(path)
        if name.split(".")[1] in ABOVE[package]
    }
    assert not upward
