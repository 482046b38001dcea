"""`tfctl grow RUN --to SIZE`: append a stage to a run and train it through the same stage loop."""

import contextlib
import json
import re
import sys
from itertools import count
from pathlib import Path

from tfctl.errors import UserError
from tfctl.model.presets import PRESETS
from tfctl.model_dir.config import load_model_config
from tfctl.model_dir.weights import load_state_dict
from tfctl.recipe import validate_recipe
from tfctl.recipe.load import read_yaml_file
from tfctl.recipe.schema import StageSection
from tfctl.run.layout import RunDir
from tfctl.run.orchestrate import train_recipe
from tfctl.run.state import DONE, RunState
from tfctl.tracking.live import RunDisplay, ended_worse


def appended_stage(
    recipe: dict,
    to: str,
    layers: int | None,
    init: str,
    optimizer: str,
    tokens: str | None,
    steps: int | None,
) -> dict:
    """The new stage entry: the target as a size (or a preset's token count), the last stage's budget by default.

    Named `grown-<target>` (`grown-2m`): a bare `2m` would read as a duration in `[2m] done … 735s`."""

    last = recipe["stages"][-1]
    names = {s["name"] for s in recipe["stages"]}
    target = to.split("-", 1)[-1] if to in PRESETS else re.sub(r"[^A-Za-z0-9._-]+", "-", to).strip("-.")
    base = f"grown-{target}"
    stage = {
        "name": base
        if base not in names
        else next(f"{base}-{i}" for i in count(2) if f"{base}-{i}" not in names)
    }
    if to in PRESETS:
        preset = PRESETS[to]
        if preset.d_model != recipe["model"]["d_model"] or preset.n_heads != recipe["model"]["n_heads"]:
            raise UserError(
                f"--to {to}: the preset's backbone (d_model {preset.d_model}, {preset.n_heads} heads) "
                f"differs from this run's ({recipe['model']['d_model']}, {recipe['model']['n_heads']})"
            )
        stage["param_tokens"] = preset.qkv_tokens
    else:
        stage["size"] = to
    if layers is not None:
        stage["layers"] = layers
    if tokens is not None:
        stage["tokens"] = tokens
    elif steps is not None:
        stage["steps"] = steps
    else:
        stage.update({k: last[k] for k in ("tokens", "steps") if last.get(k) is not None})
    stage.update(init=init, optimizer=optimizer)
    return stage


def check_last_stage(dirs: RunDir, state: RunState, recipe: dict) -> None:
    """The stage to grow from is finished and its export usable: checked before anything is written."""
    last = recipe["stages"][-1].get("name") if isinstance(recipe["stages"][-1], dict) else None
    if not isinstance(last, str) or state.stages().get(last, {}).get("status") != DONE:
        raise UserError(
            f"{dirs.root}: its last stage {last} is not finished; resume it with "
            f"`tfctl train {dirs.recipe} -o {dirs.root}`, or drop it: remove it from that recipe and run "
            f"the same command with `--force {last}`"
        )
    load_model_config(dirs.final(last))  # a missing, damaged or non-finite export: one line, nothing written
    load_state_dict(dirs.final(last))


def grow_run(
    run_dir: str | Path,
    to: str,
    layers: int | None = None,
    init: str = StageSection.model_fields["init"].default,
    optimizer: str = "reset",
    tokens: str | None = None,
    steps: int | None = None,
    json_output: bool = False,
) -> dict:
    dirs = RunDir(Path(run_dir))
    if not dirs.recipe.is_file():
        raise UserError(f"{run_dir}: a run directory without recipe.yaml; cannot append a stage")
    state = RunState.load(dirs.state, dirs.root.name)  # damaged: refused before anything is written
    recipe = read_yaml_file(dirs.recipe)
    if not isinstance(recipe, dict) or not isinstance(recipe.get("stages"), list) or not recipe["stages"]:
        raise UserError(f"{dirs.recipe}: not a recipe with stages")
    check_last_stage(dirs, state, recipe)
    recipe["stages"].append(appended_stage(recipe, to, layers, init, optimizer, tokens, steps))
    grown = validate_recipe(recipe, f"{dirs.recipe} + --to {to}")  # nothing is written before this passes
    with contextlib.redirect_stdout(sys.stderr) if json_output else contextlib.nullcontext():
        display = RunDisplay(interactive=False if json_output else None)  # a live bar on a terminal
        results = train_recipe(grown, run_dir=dirs.root, say=display.print, display=display)
    name = grown.stages[-1].name
    result = {"stage": name, **results[name]}
    if json_output:
        print(json.dumps(result, indent=2))
    elif ended_worse(result):
        display.print(f"[{name}] {ended_worse(result)}")  # the summary says it too, not only the table
    return result
