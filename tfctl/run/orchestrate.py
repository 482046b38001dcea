"""The stage loop behind `tfctl train`: data → (grow → launch → record) for every stage, resumable.

Re-running the same command on the same run directory picks up where it stopped: finished stages are
skipped, a grown-but-untrained stage reuses its grown weights, an interrupted stage resumes from its
last checkpoint (the worker's rule: an existing checkpoint wins over initial weights).
"""

import hashlib
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from tfctl.errors import TrainingError, UserError
from tfctl.recipe import Recipe, load_recipe
from tfctl.recipe.plan import StagePlan, plan_recipe
from tfctl.run.layout import RunDir
from tfctl.run.lock import RunLock
from tfctl.run.state import DONE, FAILED, GROWING, TRAINING, RunState, atomic_write_text
from tfctl.worker.completion import verified_stage_end
from tfctl.worker.spec import OptimizerSpec, StageSpec, WandbSpec
from tfctl.worker.watchdog import ORCHESTRATOR_PID

# Settings that change how a stage is run or logged but not what it computes: editing them never
# invalidates finished stages.
_VOLATILE_TRAIN = {"checkpoint_interval", "keep_checkpoints", "compile", "peak_flops"}


def fingerprinted_train(recipe: Recipe) -> dict:
    """The training settings a stage's weights depend on (the volatile ones left out)."""
    return {k: v for k, v in recipe.train.model_dump(mode="json").items() if k not in _VOLATILE_TRAIN}


def cumulative_fingerprints(base: dict, stages: list[dict]) -> list[str]:
    """Stage i's fingerprint: a hash of `base` and stages 0..i — a change to a stage invalidates it and later ones."""
    return [
        hashlib.sha256(json.dumps([base, stages[: i + 1]], sort_keys=True).encode()).hexdigest()[:16]
        for i in range(len(stages))
    ]


def stage_fingerprints(recipe: Recipe) -> list[str]:
    """Stage i's fingerprint covers everything its weights depend on: data, model, seed, training, stages ≤ i."""
    base = recipe.model_dump(mode="json", include={"data", "model", "seed"})
    base["train"] = fingerprinted_train(recipe)
    return cumulative_fingerprints(base, recipe.model_dump(mode="json")["stages"])


def wandb_mode(recipe: Recipe) -> str:
    """$WANDB_MODE wins, then the recipe; online only with an API key configured, else offline."""
    from tfctl.tracking.wandb_run import resolve_mode

    return resolve_mode(recipe.wandb.mode or "online")


@dataclass
class Run:
    """One run directory being trained: the recipe, its plan on the real vocabulary, the state."""

    recipe: Recipe
    dirs: RunDir
    state: RunState
    data_dir: Path
    plan: list[StagePlan]
    fingerprints: list[str]
    say: callable = print

    def check_unchanged(self, force: str | None) -> None:
        """Refuse a recipe that contradicts finished (or started) stages, unless --force restarts there."""
        names = [s.name for s in self.recipe.stages]
        if force is not None and force not in names:
            raise UserError(f"--force {force}: no such stage (stages: {', '.join(names)})")
        recorded = self.state.data["stages"]
        first_changed = None
        for i, name in enumerate(names):
            entry = recorded.get(name)
            if entry and entry.get("fingerprint") not in (None, self.fingerprints[i]):
                first_changed = name
                break
        extra = [n for n in recorded if n not in names]
        if force is not None:
            self.restart_from(names[names.index(force) :] + extra)
        elif first_changed:
            raise UserError(
                f"{self.dirs.root}: the recipe changed for stage {first_changed}, which already ran; "
                f"use --force {first_changed} to retrain from it, or -o for a new run directory"
            )
        elif extra:
            raise UserError(
                f"{self.dirs.root}: stage(s) {', '.join(extra)} ran before but are not in the recipe; "
                f"use --force {extra[0]} to drop them, or -o for a new run directory"
            )

    def restart_from(self, names: list[str]) -> None:
        for name in names:
            shutil.rmtree(self.dirs.stage(name), ignore_errors=True)
        drop_stage_records(self.dirs.metrics, set(names))
        self.state.drop(names)

    def offsets(self, index: int) -> dict:
        """Where stage `index` starts on the run's cumulative axes: where the stage before it ended."""
        if index == 0:
            return {"tokens_offset": 0, "flops_offset": 0.0, "device_seconds_offset": 0.0}
        end = self.state.stage(self.recipe.stages[index - 1].name)["result"]
        return {
            "tokens_offset": int(end["tokens"]),
            "flops_offset": float(end["flops"]),
            "device_seconds_offset": float(end["device_seconds"]),
        }

    def grow_into(self, index: int) -> dict | None:
        """The initial weights of stage `index`: the previous stage's export, grown. Returns the report."""
        from tfctl.data import eval_batches, load_prepared
        from tfctl.growth import grow_model_dir

        stage, entry = self.recipe.stages[index], self.state.stage(self.recipe.stages[index].name)
        init = self.dirs.init(stage.name)
        if entry.get("growth") and (init / "config.json").is_file():
            return entry["growth"]  # grown before an interruption: reuse
        previous = self.recipe.stages[index - 1].name
        self.state.update(stage.name, status=GROWING, fingerprint=self.fingerprints[index])
        shutil.rmtree(init, ignore_errors=True)  # a growth cut short before it was recorded
        data = load_prepared(self.data_dir)
        probe = eval_batches(data.tokens("val"), self.recipe.data.seq_len, 4, 1)[0][0]
        report = grow_model_dir(
            self.dirs.final(previous),
            init,
            to=self.plan[index].config,
            layers=stage.layers,
            init=stage.init,
            optimizer=stage.optimizer,
            seed=self.recipe.seed + index,
            probe=probe,
        ).to_dict()
        report.update(source=previous, init=stage.init, optimizer=stage.optimizer)
        return report

    def stage_spec(self, index: int, growth: dict | None) -> StageSpec:
        from tfctl.model import config_to_dict
        from tfctl.model_dir import load_model_config

        recipe, stage, plan = self.recipe, self.recipe.stages[index], self.plan[index]
        t = recipe.train
        if index == 0:
            import dataclasses

            config = plan.config
            if hasattr(
                config, "scale_mode"
            ):  # a Tokenformer; a baseline Transformer (tfctl compare) has no τ
                config = dataclasses.replace(config, scale_mode=recipe.model.scale_mode)
            model = config_to_dict(config)
        else:
            model = config_to_dict(load_model_config(self.dirs.init(stage.name)))
        continued = t.lr_schedule == "continue"
        optimizer_file = self.dirs.init(stage.name) / "optimizer.safetensors"
        return StageSpec(
            run_name=recipe.name,
            stage=stage.name,
            stage_index=index,
            model=model,
            data_dir=str(self.data_dir),
            out_dir=str(self.dirs.stage(stage.name)),
            metrics_path=str(self.dirs.metrics),
            steps=plan.steps,
            global_batch=plan.global_batch,
            seq_len=recipe.data.seq_len,
            micro_batch=t.micro_batch,
            init_weights=str(self.dirs.init(stage.name)) if index else None,
            init_optimizer=str(optimizer_file) if index and optimizer_file.is_file() else None,
            seed=recipe.seed + index,
            optimizer=OptimizerSpec(
                lr=plan.lr,
                min_lr=plan.min_lr,
                warmup_steps=self.plan[0].warmup_steps if continued else plan.warmup_steps,
                betas=tuple(t.betas),
                eps=t.eps,
                weight_decay=t.weight_decay,
                grad_clip=t.grad_clip,
                schedule_offset=sum(p.steps for p in self.plan[:index]) if continued else 0,
                schedule_total=sum(p.steps for p in self.plan) if continued else None,
            ),
            precision=t.precision,
            zero_stage=t.zero_stage,
            compile=t.compile,
            eval_interval=t.eval_interval,
            eval_batches=t.eval_batches,
            eval_batch_size=t.eval_batch_size,
            checkpoint_interval=t.checkpoint_interval,
            keep_checkpoints=t.keep_checkpoints,
            peak_flops=t.peak_flops,
            growth=growth,
            wandb=WandbSpec(
                mode=wandb_mode(recipe),
                project=recipe.wandb.project,
                entity=recipe.wandb.entity,
                group=recipe.wandb.group or recipe.name,
                name=f"{recipe.name}/{stage.name}",
                tags=list(recipe.wandb.tags),
                dir=str(self.dirs.root),
                config=recipe.model_dump(mode="json"),
            ),
            **self.offsets(index),
        )

    def train_stage(self, index: int) -> dict:
        from tfctl.launch import EXIT_INTERRUPTED, LaunchSettings, run_stage
        from tfctl.tracking import MetricsFile, read_metrics

        stage = self.recipe.stages[index]
        growth = None
        if index:
            growth = self.grow_into(index)
            if not self.state.stage(stage.name).get("growth"):
                metrics = MetricsFile(self.dirs.metrics)
                metrics.write(
                    {
                        "kind": "growth",
                        "stage": stage.name,
                        "step": 0,
                        "tokens": self.offsets(index)["tokens_offset"],
                        "flops": self.offsets(index)["flops_offset"],
                        **growth,
                    }
                )
                metrics.close()
            self.state.update(stage.name, growth=growth)
            self.say(
                f"[{stage.name}] grown from {growth['source']} ({growth['init']}): "
                f"{growth['params_before']:,} → {growth['params_after']:,} params, "
                f"max |Δlogits| {growth['max_abs_logit_diff']:.2e}, "
                f"loss {growth['loss_before']:.4f} → {growth['loss_after']:.4f}"
            )
        spec = self.stage_spec(index, growth)
        self.dirs.stage(stage.name).mkdir(parents=True, exist_ok=True)
        spec.save(self.dirs.spec(stage.name))
        self.state.update(stage.name, status=TRAINING, fingerprint=self.fingerprints[index])
        plan = self.plan[index]
        self.say(
            f"[{stage.name}] training {plan.params:,} params for {plan.steps} steps "
            f"({plan.tokens:,} tokens) on {self.recipe.launch.world_size} rank(s)"
        )
        launch = LaunchSettings(**self.recipe.launch.model_dump())
        launch.env = {**launch.env, ORCHESTRATOR_PID: str(os.getpid())}  # the ranks stop if we die
        errors_before = len(read_metrics(self.dirs.metrics, kind="error", stage=stage.name))
        code = run_stage(self.dirs.spec(stage.name), launch, log_path=self.dirs.worker_log(stage.name))
        result = verified_stage_end(self.dirs.final(stage.name), self.dirs.metrics, stage.name)
        if code != 0 and (result is None or code == EXIT_INTERRUPTED):  # Ctrl-C stops the run regardless
            errors = read_metrics(self.dirs.metrics, kind="error", stage=stage.name)
            reason = (
                errors[-1]["message"]
                if len(errors) > errors_before
                else (f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit {code}")
            )
            self.state.update(stage.name, status=FAILED, exit_code=code, error=reason)
            raise TrainingError(
                f"stage {stage.name} failed: {reason} (exit {code}); "
                f"log: {self.dirs.worker_log(stage.name)}. Fix the cause and re-run the same command "
                f"to resume from its last checkpoint."
            )
        if result is None:
            self.state.update(stage.name, status=FAILED)
            raise TrainingError(
                f"stage {stage.name}: the worker exited 0 but left no stage_end record or verified export"
            )
        if code != 0:
            self.say(f"[{stage.name}] a rank exited with {code} after the export was complete and verified")
        self.state.update(stage.name, status=DONE, result=result)
        self.say(
            f"[{stage.name}] done: val loss {result['val_loss']:.4f}, ppl {result['val_ppl']:.2f}, "
            f"{result['wall_seconds']:.0f}s"
        )
        return result

    def log_summary(self, results: dict) -> None:
        """The stage table as a W&B `summary` run in the run's group."""
        from tfctl.tracking.wandb_summary import log_run_summary

        growth = {
            name: self.state.stage(name)["growth"] for name in results if self.state.stage(name).get("growth")
        }
        w = self.recipe.wandb
        log_run_summary(
            self.recipe.name,
            results,
            growth,
            mode=wandb_mode(self.recipe),
            project=w.project,
            entity=w.entity,
            group=w.group or self.recipe.name,
            directory=self.dirs.root,
            tags=list(w.tags),
        )


def drop_stage_records(metrics: Path, stages: set[str]) -> None:
    """Remove every record of `stages` from metrics.jsonl (for --force)."""
    if not metrics.is_file():
        return
    kept = [
        line
        for line in metrics.read_text().splitlines()
        if line.strip() and json.loads(line).get("stage") not in stages
    ]
    atomic_write_text(metrics, "".join(line + "\n" for line in kept))


def open_run(recipe: Recipe, run_dir: Path, data_dir: Path, vocab_size: int, say=print) -> Run:
    dirs = RunDir(run_dir)
    return Run(
        recipe=recipe,
        dirs=dirs,
        state=RunState.load(dirs.state, recipe.name),
        data_dir=data_dir,
        plan=plan_recipe(recipe, vocab_size=vocab_size).stages,
        fingerprints=stage_fingerprints(recipe),
        say=say,
    )


def prepare_data(recipe: Recipe) -> Path:
    from tfctl.data import DataSettings, prepare_dataset

    d = recipe.data
    return prepare_dataset(
        DataSettings(
            source=d.source,
            tokenizer=d.tokenizer,
            val_fraction=d.val_fraction,
            seed=recipe.seed,
            text_field=d.text_field,
        )
    )


def link_data(dirs: RunDir, data_dir: Path) -> None:
    if dirs.data.is_symlink() or dirs.data.exists():
        if dirs.data.resolve() == data_dir.resolve():
            return
        dirs.data.unlink()
    dirs.data.symlink_to(data_dir.resolve(), target_is_directory=True)


def train_recipe(
    recipe_path: str | Path,
    overrides: list[str] | None = None,
    run_dir: str | Path | None = None,
    force: str | None = None,
    say=print,
) -> dict:
    """`tfctl train`: every stage of the recipe, resuming whatever an earlier call left unfinished."""
    recipe = load_recipe(recipe_path, overrides)  # every user error surfaces here, before anything is written
    from tfctl.data import load_prepared

    run_dir = Path(run_dir) if run_dir else Path("runs") / recipe.name
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"{run_dir}: not a directory; give -o a run directory (new or existing)")
    RunState.load(
        RunDir(run_dir).state, recipe.name
    )  # a damaged state.json is refused before anything is written
    data_dir = prepare_data(recipe)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"{run_dir}: cannot create the run directory ({error.strerror})") from None
    with RunLock(RunDir(run_dir).lock):
        run = open_run(recipe, run_dir, data_dir, load_prepared(data_dir).vocab_size, say)
        run.check_unchanged(force)
        atomic_write_text(run.dirs.recipe, yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))
        run.state.data.update(
            name=recipe.name, data_dir=str(data_dir), updated=time.strftime("%Y-%m-%d %H:%M:%S")
        )
        run.state.save()
        link_data(run.dirs, data_dir)
        results, trained = {}, False
        for index, stage in enumerate(recipe.stages):
            if run.state.stage(stage.name).get("status") == DONE:
                say(f"[{stage.name}] already done, skipped")
                results[stage.name] = run.state.stage(stage.name)["result"]
                continue
            results[stage.name] = run.train_stage(index)
            trained = True
        if trained:
            run.log_summary(results)
        return results
