"""Property: whatever file of a finished run directory is damaged (truncated, garbage, the wrong JSON shape,
deleted), train / eval / generate / compare / grow end in a result or a one-line error — never a traceback —
and delete nothing outside the run directory.

Every file of one finished tiny run (the session's reference run, copied per case) is damaged in every way
that applies, and every command runs on the copy in-process (typer's CliRunner: the real command functions,
the CLI's error handling emulated as `tfctl.cli.main` does it). The worker is not launched: `run_stage`
answers "exit 1" at once, so train and grow go through every check, growth and write up to the launch and
end in the one-line failure of a stage; the worker's own handling of damaged checkpoints is tested for real
in test_kill_resume.py and test_checkpoint_files.py."""

import json
import shutil
import traceback
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tfctl.compare.pipeline
import tfctl.run.stage_loop
from tfctl.cli import app
from tfctl.errors import TrainingError, UserError

pytestmark = pytest.mark.slow  # the reference run is a real 2-stage training

DAMAGES = ("truncate", "garbage", "shape", "delete")
STATE_SHAPES = [  # state.json shapes a hand edit or a hostile file produces
    [1, 2],
    {"stages": None},
    {"stages": {"s1": None}},
    {"stages": {"s1": "done"}},
    {"stages": {"s1": {"status": "done"}}},
    {"stages": {"s1": {"status": "done", "result": {"val_loss": "low"}}}},
    {"stages": {"s1": {"status": "sleeping"}}},
    {"stages": {"../../outside": {"status": "failed"}}},
    {"stages": {"/": {"status": "done"}}},
    {"name": 3, "stages": {}},
]


def fake_run_stage(spec, launch, env=None, log_path=None) -> int:
    return 1  # the worker "failed" at once: nothing is trained


def cli(*args) -> tuple[int, str]:
    """(exit code, what the user sees) of a command run as `tfctl.cli.main` would; a traceback fails."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    error = result.exception
    if error is None or isinstance(error, SystemExit):
        return result.exit_code, result.output
    if isinstance(error, UserError | TrainingError):
        assert "\n" not in str(error).strip(), (
            f"tfctl {' '.join(map(str, args))}: more than one line: {error}"
        )
        return error.exit_code, str(error)
    trace = "".join(traceback.format_exception(error))
    raise AssertionError(f"tfctl {' '.join(map(str, args))}: a traceback\n{trace}")


def snapshot(root: Path) -> dict:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if not p.is_symlink()}


def damage(path: Path, how: str) -> bool:
    """Damage `path` in place; False when `how` does not apply to it."""
    data = path.read_bytes()
    if how == "truncate":
        if not data:
            return False
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        path.write_bytes(b"\xff\xfe garbage \x00\x9c" * 8)
    elif how == "shape":
        try:
            value = json.loads(data)
        except ValueError:
            return False
        path.write_text(json.dumps({k: None for k in value} if isinstance(value, dict) else {"x": [value]}))
    elif how == "delete":
        path.unlink()
    return True


def run_files(run: Path) -> list[str]:
    """Every file of the run that tfctl reads back: not its link to the shared data cache, not worker.log
    (written, never read), not the checkpoints of s1 (a finished stage's checkpoints are never read again)
    nor the older checkpoint of s2 (the same files as the newest)."""
    files = []
    for path in sorted(run.rglob("*")):
        relative = path.relative_to(run)
        if not path.is_file() or path.is_symlink() or relative.parts[0] in ("data", "wandb"):
            continue
        if path.name == "worker.log" or relative.parts[:3] == ("stages", "s1", "checkpoints"):
            continue
        if "checkpoints" in relative.parts and relative.parts[-2] not in ("checkpoints", "step00000008"):
            continue
        files.append(str(relative))
    return files


def damages(relative: str) -> tuple[str, ...]:
    """Binary files (weights, checkpoints) are truncated or deleted; text and JSON files also garbled and,
    when JSON, given the wrong shape."""
    binary = relative.endswith((".pt", ".safetensors"))
    return ("truncate", "delete") if binary else DAMAGES


@pytest.fixture(scope="module")
def world(reference, tmp_path_factory):
    """The pristine run, a recipe file outside it, and what no command may touch (a sibling directory, the
    prepared data the run links to)."""
    root = tmp_path_factory.mktemp("damage")
    recipe = root / "recipe.yaml"
    shutil.copy(reference / "recipe.yaml", recipe)
    (root / "outside" / "stages").mkdir(parents=True)
    (root / "outside" / "keep.txt").write_text("must survive\n")
    data = (reference / "data").resolve()
    return {"reference": reference, "root": root, "recipe": recipe, "data": data}


def commands(run: Path, recipe: Path) -> list[tuple]:
    return [
        ("train", recipe, "-o", run),
        ("eval", run),
        ("generate", run, "-p", "to be", "-n", "3"),
        ("compare", run, "--with", run),
        ("grow", run, "--to", "60k"),
    ]


def check_case(world: dict, case: str, prepare) -> bool:
    """Copy the run, `prepare(run)` (False: not applicable), run every command. Whether it ran."""
    root = world["root"]
    run = root / case / "run"
    shutil.copytree(world["reference"], run, symlinks=True)
    if prepare(run) is False:
        shutil.rmtree(root / case)
        return False
    outside = snapshot(root / "outside") | snapshot(world["data"]) | snapshot(world["reference"])
    for command in commands(run, world["recipe"]):
        code, _ = cli(*command)
        assert code in (0, 1, 2), command
        assert snapshot(root / "outside") | snapshot(world["data"]) | snapshot(world["reference"]) == outside
    shutil.rmtree(root / case)
    return True


@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    monkeypatch.setattr(tfctl.run.stage_loop, "run_stage", fake_run_stage)
    monkeypatch.setattr(tfctl.compare.pipeline, "plot_ppl_vs_flops", lambda *args, **kwargs: [])  # time
    monkeypatch.setenv("WANDB_MODE", "disabled")


def test_every_damaged_file_is_a_result_or_one_line(world):
    cases = 0
    for relative in run_files(world["reference"]):
        for how in damages(relative):
            case = f"{how}-{relative.replace('/', '_')}"
            cases += check_case(world, case, lambda run, r=relative, h=how: damage(run / r, h))
    assert cases > 50


@pytest.mark.parametrize("shape", STATE_SHAPES, ids=[json.dumps(s)[:40] for s in STATE_SHAPES])
def test_state_json_of_the_wrong_shape(world, shape):
    run = world["root"] / "state" / "run"
    shutil.copytree(world["reference"], run, symlinks=True)
    (run / "state.json").write_text(json.dumps(shape))
    outside = snapshot(world["root"] / "outside") | snapshot(world["data"])
    for command in [*commands(run, world["recipe"]), ("train", world["recipe"], "-o", run, "--force", "s2")]:
        code, message = cli(*command)
        assert code == 2 and "state.json" in message, (command, message)
    assert snapshot(world["root"] / "outside") | snapshot(world["data"]) == outside
    assert json.loads((run / "state.json").read_text()) == shape  # refused before anything was written
    shutil.rmtree(run.parent)


def test_missing_stage_directory_is_refused_with_the_way_out(world):
    run = world["root"] / "nodir" / "run"
    shutil.copytree(world["reference"], run, symlinks=True)
    shutil.rmtree(run / "stages" / "s1")
    code, message = cli("train", world["recipe"], "-o", run)
    assert code == 2 and "--force s1" in message
    code, message = cli("train", world["recipe"], "-o", run, "--force", "s1")
    assert code == 1 and "stage s1 failed" in message  # retrained (the fake worker fails at once)
    stages = json.loads((run / "state.json").read_text())["stages"]
    assert stages["s1"]["status"] == "failed" and "s2" not in stages and not (run / "stages" / "s2").exists()
