"""docs/architecture.md's import rules, read off the source: which package may import which (even lazily), and
no import inside a function without a reason. Each rule is also run on a planted violation, so it can fail."""

import ast
from pathlib import Path

import pytest

TFCTL = Path(__file__).resolve().parents[2] / "tfctl"

# package -> the tfctl packages (and top-level modules) it may import; cli/ and bench/ sit on top of everything
MAY_IMPORT = {
    "model": {"errors"},
    "outputs": {"errors", "files"},
    "model_dir": {"errors", "files", "model", "outputs"},
    "growth": {"errors", "files", "model", "model_dir", "outputs"},
    "data": {"errors", "files", "hub_access"},
    "tracking": {"files", "model"},
    "recipe": {"data", "errors", "model"},
    "stage": {"errors", "files", "recipe", "tracking"},
    "worker": {"data", "errors", "files", "model", "model_dir", "stage", "tracking"},
    "launch": {"errors", "files", "recipe", "stage"},
    "slurm": {"errors", "stage"},
    "interop": {"data", "errors", "model", "model_dir", "outputs"},
    "run": {
        "data",
        "errors",
        "files",
        "growth",
        "launch",
        "model",
        "model_dir",
        "recipe",
        "slurm",
        "stage",
        "tracking",
    },
    "downstream": {
        "data",
        "errors",
        "files",
        "hub_access",
        "model",
        "model_dir",
        "recipe",
        "run",
        "tracking",
    },
    "compare": {"data", "errors", "files", "growth", "model", "recipe", "run", "stage", "tracking"},
}

# Imports inside a function, outside cli/ and bench/: the optional or heavy libraries only some paths need
# (a module that imports the same library at its top has no reason to), and the documented lazy loaders.
LAZY_LIBRARIES = {
    "torch",
    "deepspeed",
    "wandb",
    "matplotlib",
    "transformers",
    "datasets",
    "huggingface_hub",
    "tokenizers",
    "lm_eval",
    "psutil",
    "rich",
}
LAZY_LOADERS = {
    "model/__init__.py": "torch modules load on first use, so recipe validation and plan never import torch",
    "compare/__init__.py": "compare_run loads on first use, so runs.py checks a run directory before torch",
    "run/peak.py": "the CPU peak's matmul timing (torch) loads only when a run measures one",
}
ANYTHING = ("cli", "bench")


def package_of(path: Path, root: Path) -> str:
    return path.relative_to(root).parts[0].removesuffix(".py")


def imports(path: Path) -> list[tuple[str, bool]]:
    """(module, inside a function) for every absolute import of a file that loads at run time (those under
    `if TYPE_CHECKING:` are for annotations only)."""
    tree = ast.parse(path.read_text())

    def inside(kind) -> set[int]:
        return {id(node) for block in ast.walk(tree) if kind(block) for node in ast.walk(block)}

    inner = inside(lambda block: isinstance(block, ast.FunctionDef | ast.AsyncFunctionDef))
    typing_only = inside(
        lambda block: isinstance(block, ast.If) and getattr(block.test, "id", "") == "TYPE_CHECKING"
    )
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in inner) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, id(node) in inner))
    return found


def layering_violations(root: Path) -> list[str]:
    """Every import of a tfctl package that its package may not import (MAY_IMPORT), at the top or lazily."""
    found = []
    for path in sorted(root.rglob("*.py")):
        package = package_of(path, root)
        if package not in MAY_IMPORT:
            continue
        for module, _ in imports(path):
            parts = module.split(".")
            if parts[0] == "tfctl" and len(parts) > 1 and parts[1] != package:
                if parts[1] not in MAY_IMPORT[package]:
                    found.append(f"{path.relative_to(root)} imports {module}")
    return found


def lazy_import_violations(root: Path) -> list[str]:
    """Imports inside functions that neither load an optional/heavy library nor sit in a documented lazy loader."""
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if package_of(path, root) in ANYTHING or relative in LAZY_LOADERS:
            continue
        found_imports = imports(path)
        at_top = {module.split(".")[0] for module, inner in found_imports if not inner}
        for module, inner in found_imports:
            library = module.split(".")[0]
            if inner and (library not in LAZY_LIBRARIES or library in at_top):
                found.append(f"{relative} imports {module} inside a function")
    return found


def test_packages_import_only_what_they_may():
    assert layering_violations(TFCTL) == []


def test_imports_sit_at_the_top_outside_cli_and_the_lazy_loaders():
    assert lazy_import_violations(TFCTL) == []


@pytest.mark.parametrize(
    "package, source, rule",
    [
        ("model", "from tfctl.run.state import RunState\n", layering_violations),
        ("growth", "import tfctl.worker.stage\n", layering_violations),
        ("interop", "def f():\n    from tfctl.run.layout import RunDir\n", layering_violations),
        ("tracking", "from tfctl.compare.report import build_report\n", layering_violations),
        ("stage", "from tfctl.worker.stage import StageTrainer\n", layering_violations),
        ("worker", "def f():\n    from tfctl.data import load_prepared\n", lazy_import_violations),
        ("worker", "import torch\n\ndef f():\n    import torch.distributed\n", lazy_import_violations),
    ],
)
def test_a_planted_violation_is_found(tmp_path, package, source, rule):
    (tmp_path / package).mkdir()
    (tmp_path / package / "planted.py").write_text(source)
    assert rule(tmp_path) == [rule(tmp_path)[0]] and "planted.py imports" in rule(tmp_path)[0]


def test_the_lazy_loaders_listed_exist():
    assert all((TFCTL / name).is_file() for name in LAZY_LOADERS)
