"""`tfctl train RECIPE`: prepare the data, then every stage of the recipe through the stage loop.

A growth run is a RunJob whose stages are the recipe's, fingerprinted by everything their weights depend
on, and whose stage i starts from stage i-1's export grown by tfctl.growth.
"""

import shlex
from pathlib import Path

import yaml

from tfctl.data import DataSettings, load_prepared, prepare_dataset
from tfctl.errors import UserError
from tfctl.files import atomic_write_text
from tfctl.growth import grow_model_dir
from tfctl.model_dir.config import load_model_config
from tfctl.model_dir.weights import check_finite, map_state_dict
from tfctl.recipe import Recipe, validate_recipe
from tfctl.recipe.load import read_yaml_file
from tfctl.recipe.plan import StagePlan, plan_stages, stage_seed
from tfctl.run.job import GrowFn, RunJob, changed_stages, cumulative_fingerprints, fingerprinted_train
from tfctl.run.layout import RunDir
from tfctl.run.stage_loop import StageLoop, check_start, locked_run
from tfctl.run.state import DONE, RunState, checked_run_dir
from tfctl.tracking.live import RunDisplay
from tfctl.tracking.wandb_run import resolve_mode
from tfctl.tracking.wandb_summary import log_run_summary


def fingerprinted_settings(recipe: Recipe) -> tuple[dict, list[dict]]:
    """What the stage fingerprints hash: the settings every stage depends on, and each stage's own."""
    base = recipe.model_dump(mode="json", include={"model", "seed"})
    if recipe.model.scale_mode != "anneal":  # its length changes nothing else: fingerprints as before
        del base["model"]["anneal"]
    base["data"] = recipe.data.fingerprint()
    base["train"] = fingerprinted_train(recipe.train)
    stages = recipe.model_dump(mode="json")["stages"]
    if "from" not in stages[0]:
        # a first stage that grows from nothing ignores its `init`: it is hashed as the value every run
        # recorded before the default became `paper`, so their first stage is still recognised
        stages[0]["init"] = "preserve"
    return base, stages


def stage_fingerprints(recipe: Recipe) -> list[str]:
    """Stage i's fingerprint covers everything its weights depend on: data, model, seed, training, stages ≤ i."""
    return cumulative_fingerprints(*fingerprinted_settings(recipe))


def setting_changes(before, now, path: str = "") -> list[tuple[str, object, object]]:
    """The leaves that differ between two fingerprinted settings, as (`--set` path, before, now); mappings and
    lists of mappings (stages) are compared entry by entry, an absent entry as None."""
    if isinstance(before, dict) and isinstance(now, dict):
        keys = [*before, *(k for k in now if k not in before)]
        return [c for k in keys for c in setting_changes(before.get(k), now.get(k), f"{path}{k}.")]
    if isinstance(before, list) and isinstance(now, list) and all(isinstance(x, dict) for x in before + now):
        pairs = [
            (before[i] if i < len(before) else None, now[i] if i < len(now) else None)
            for i in range(max(len(before), len(now)))
        ]
        return [c for i, (a, b) in enumerate(pairs) for c in setting_changes(a, b, f"{path}{i}.")]
    return [] if before == now else [(path.rstrip("."), before, now)]


def recorded_changes(dirs: RunDir, state: RunState, recipe: Recipe, changed: list[str]) -> list[tuple]:
    """The settings of `recipe` that differ from those the run's finished stages `changed` were made with,
    read from the run's recipe.yaml; empty when that file does not account for their fingerprints."""
    try:
        recorded = validate_recipe(read_yaml_file(dirs.recipe), str(dirs.recipe))
    except UserError:
        return []  # missing, or written by another version of the format: the plain message
    names = [s.name for s in recipe.stages]
    if [s.name for s in recorded.stages[: len(names)]] != names:
        return []
    prints = dict(zip(names, stage_fingerprints(recorded), strict=False))
    if any(prints.get(name) != state.stages()[name].get("fingerprint") for name in changed):
        return []
    last = max(names.index(name) for name in changed) + 1
    (base, stages), (now_base, now_stages) = fingerprinted_settings(recorded), fingerprinted_settings(recipe)
    return setting_changes({**base, "stages": stages[:last]}, {**now_base, "stages": now_stages[:last]})


def as_set_value(value) -> str:
    """`value` as `--set KEY=VALUE` parses it back (YAML, flow style)."""
    return yaml.safe_dump([value], default_flow_style=True, allow_unicode=True, width=2**31).strip()[1:-1]


def changed_recipe_message(root: Path, stage: str, changes: list[tuple]) -> str:
    """One line: what changed for a stage that already ran, and the three ways on."""
    if not changes:
        return (
            f"{root}: the recipe changed for stage {stage}, which already ran; "
            f"use --force {stage} to retrain from it, or -o for a new run directory"
        )
    path, before, now = changes[0]
    more = f" (and {', '.join(c[0] for c in changes[1:])})" if changes[1:] else ""
    restore = " ".join(f"--set {shlex.quote(f'{p}={as_set_value(b)}')}" for p, b, _ in changes)
    return (
        f"{root}: {path}: the run was made with {before!r}, the recipe now says {now!r}{more}; "
        f"use {restore} to continue this run, -o for a new run directory, or --force {stage} to retrain "
        f"from {stage}"
    )


def tokenformer_growth(recipe: Recipe) -> GrowFn:
    """Stage i of the recipe starts from stage i-1's export with more parameter tokens (and layers)."""

    def grow(source: Path, out: Path, plan: StagePlan, index: int, probe) -> dict:
        stage = recipe.stages[index]
        report = grow_model_dir(
            source,
            out,
            to=plan.config,
            layers=stage.layers,
            init=stage.init,
            optimizer=stage.optimizer,
            seed=stage_seed(recipe.seed, index),
            probe=probe,
        ).to_dict()
        return {**report, "init": stage.init, "optimizer": stage.optimizer}

    return grow


def growth_job(recipe: Recipe, run_dir: Path, data_dir: Path, vocab_size: int) -> RunJob:
    return RunJob.for_recipe(
        recipe,
        run_dir,
        group=run_dir.name,
        name=recipe.name,
        data_dir=data_dir,
        plans=plan_stages(recipe, vocab_size),
        fingerprints=stage_fingerprints(recipe),
        seed=recipe.seed,
        grow=tokenformer_growth(recipe),
        start_from=Path(recipe.stages[0].from_).expanduser() if recipe.stages[0].from_ else None,
        wandb_config=recipe.model_dump(mode="json"),
    )


def check_unchanged(loop: StageLoop, force: str | None, recipe: Recipe | None = None) -> list[str]:
    """Refuse a recipe that contradicts finished (or started) stages, unless --force restarts there.

    Returns the stages recorded past the recipe's end (appended by `tfctl grow RUN`), which are kept when the
    recipe's stages are the run's first ones: the original recipe still re-runs on a grown run. With the
    `recipe`, a refusal names the settings that changed (from the run's recipe.yaml) and how to keep them."""
    names, dirs = loop.job.stage_names, loop.job.dirs
    changed = changed_stages(loop.state, loop.job)
    extra = [name for name in changed if name not in names]
    if force is not None and force not in names + extra:
        raise UserError(f"--force {force}: no such stage (stages: {', '.join(names)})")
    recorded_data = loop.state.data.get("data_dir")
    if (
        force is None
        and loop.state.stages()
        and recorded_data
        and Path(recorded_data).name != loop.job.data_dir.name
    ):
        raise UserError(
            f"{dirs.root}: the prepared data changed since its stages ran (corpus files edited? was "
            f"{Path(recorded_data).name}, now {loop.job.data_dir.name}); use --force {names[0]} to retrain "
            f"on it, or -o for a new run directory"
        )
    first_changed = next((name for name in names if name in changed), None)
    if first_changed and (force is None or force in extra):
        ran = [name for name in names if name in changed]
        changes = recorded_changes(dirs, loop.state, recipe, ran) if recipe is not None else []
        raise UserError(changed_recipe_message(dirs.root, first_changed, changes))
    if force in extra:  # stages dropped from the recipe: forget them
        loop.restart_from(extra)
    elif force is not None:
        loop.restart_from(names[names.index(force) :] + extra)
    elif extra and list(loop.state.stages())[: len(names)] != names:
        raise UserError(
            f"{dirs.root}: stage(s) {', '.join(extra)} ran before but are not in the recipe; "
            f"use --force {extra[0]} to drop them, or -o for a new run directory"
        )
    elif extra:
        loop.say(
            f"[{', '.join(extra)}] past the end of this recipe (appended by `tfctl grow`): kept; "
            f"{dirs.recipe} holds every stage"
        )
        return extra
    return []


def check_start_weights(recipe: Recipe, dirs: RunDir) -> Path | None:
    """The `from:` model directory of a first stage still to train: a model directory whose weights load and
    are finite (a missing path, a file, a run, NaN weights: one line). None when there is none to check."""
    if not recipe.stages[0].from_:
        return None
    first = RunState.load(dirs.state, recipe.name).stages().get(recipe.stages[0].name, {})
    if first.get("status") == DONE:
        return None
    start = Path(recipe.stages[0].from_).expanduser()
    try:
        load_model_config(start)
        check_finite(map_state_dict(start), start)
    except UserError as error:
        raise UserError(f"stages[0].from: {error}") from None
    return start


def prepare_data(recipe: Recipe) -> Path:
    d = recipe.data
    settings = DataSettings(
        source=d.source,
        tokenizer=d.tokenizer,
        val_fraction=d.val_fraction,
        seed=recipe.seed if d.seed is None else d.seed,
        text_field=d.text_field,
    )
    return prepare_dataset(settings, progress=False)  # the caller's spinner says it; no bars inside it


def log_summary(job: RunJob, state: RunState, results: dict) -> None:
    """The stage table as a W&B `summary` run in the run's group."""
    growth = {name: state.stage(name)["growth"] for name in results if state.stage(name).get("growth")}
    w = job.wandb
    log_run_summary(
        job.dirs.root.name,
        results,
        growth,
        mode=resolve_mode(w.mode or "online"),
        project=w.project,
        entity=w.entity,
        group=w.group,
        directory=job.dirs.root,
        tags=list(w.tags),
    )


def train_recipe(
    recipe: Recipe,
    run_dir: str | Path | None = None,
    force: str | None = None,
    say=print,
    display: RunDisplay | None = None,
) -> dict:
    """`tfctl train`: every stage of a (loaded, validated) recipe, resuming what an earlier call left."""
    run_dir = checked_run_dir(run_dir, recipe.name)  # refused before anything is written
    dirs = RunDir(run_dir)
    start = check_start_weights(recipe, dirs)  # `from:` refused before the data or the run is written
    display = display or RunDisplay(interactive=False)
    with display.activity("preparing the data (cached after the first time)"):
        data_dir = prepare_data(recipe)
    job = growth_job(recipe, run_dir, data_dir, load_prepared(data_dir).vocab_size)
    if start is not None:
        check_start(start, job.plans[0].config)
    with locked_run(dirs, recipe.name) as state:
        loop = StageLoop(job, state, say, display)
        appended = check_unchanged(loop, force, recipe)
        loop.check_unfinished()
        if not appended:  # with appended stages, recipe.yaml (all of them) stays
            atomic_write_text(dirs.recipe, yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))
        results, trained = loop.run()
        if trained:
            log_summary(job, state, results)
            display.wandb_notice(resolve_mode(job.wandb.mode or "online"), [dirs.root])
        return results
