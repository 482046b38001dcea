"""The one stage loop: for every stage of a run directory, (grow →) launch the worker → record. Resumable.

Growth runs (`tfctl train`) and baselines (`tfctl compare`) are both a `RunJob` (tfctl/run/job.py: planned
stages, their fingerprints, the training settings and how stage i starts from stage i-1), trained by `StageLoop`.

Re-running picks up where a call stopped: finished stages are skipped, a grown-but-untrained stage reuses its
grown weights, an interrupted stage resumes from its last checkpoint (the worker's rule: an existing
checkpoint wins over initial weights).
"""

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tfctl.data import eval_batches, load_prepared
from tfctl.errors import Interrupted, TrainingError, UserError
from tfctl.files import is_inside, remove_tree
from tfctl.growth.target import backbone_changes, shrunk_fields
from tfctl.launch import EXIT_INTERRUPTED, exit_reason, last_error_line, run_stage
from tfctl.model import config_to_dict
from tfctl.model_dir.config import load_model_config
from tfctl.recipe.plan import stage_seed
from tfctl.run.job import RunJob
from tfctl.run.layout import RunDir
from tfctl.run.lock import RunLock
from tfctl.run.peak import raise_run_cpu_peak, run_cpu_peak
from tfctl.run.stage_checks import ENVIRONMENT_ERRNOS, check_finished, check_resumable, stopped_by_machine
from tfctl.run.state import DONE, FAILED, GROWING, TRAINING, RunState
from tfctl.stage.completion import verified_stage_end
from tfctl.stage.exit_codes import EXIT_PREEMPTED
from tfctl.stage.preemption import StagePreempted, stop_requests
from tfctl.stage.schedule import CosineSchedule
from tfctl.stage.spec import StageSpec, WandbSpec
from tfctl.stage.watchdog import orchestrator_env
from tfctl.tracking import MetricsFile, read_metrics
from tfctl.tracking.live import RunDisplay
from tfctl.tracking.wandb_ids import wandb_run_id
from tfctl.tracking.wandb_run import resolve_mode


def link_data(dirs: RunDir, data_dir: Path) -> None:
    if dirs.data.is_symlink() or dirs.data.exists():
        if dirs.data.resolve() == data_dir.resolve():
            return
        dirs.data.unlink()
    dirs.data.symlink_to(data_dir.resolve(), target_is_directory=True)


@contextmanager
def locked_run(dirs: RunDir, name: str) -> Iterator[RunState]:
    """The run directory, created and locked for this process; its state loaded."""
    try:
        dirs.root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"{dirs.root}: cannot create the run directory ({error.strerror})") from None
    with RunLock(dirs.lock):
        yield RunState.load(dirs.state, name)


def check_start(source: Path, config) -> None:
    """A `from:` model directory must hold a model of the recipe's backbone, no larger than stage 0 (it is
    grown into stage 0, never reshaped or shrunk)."""
    start = load_model_config(source)
    changed = [
        f"{k} {getattr(start, k, None)} (recipe: {getattr(config, k)})"
        for k in backbone_changes(start, config)
    ]
    if changed:
        raise UserError(f"stages[0].from {source}: a different backbone: {', '.join(changed)}")
    larger = [f"{k} {getattr(start, k)} > {getattr(config, k)}" for k in shrunk_fields(start, config)]
    if larger:
        raise UserError(
            f"stages[0].from {source}: larger than the first stage ({', '.join(larger)}); raise its size"
        )


def stage_start(metrics_path: Path, stage: str) -> dict:
    """Where a stage started: its step-0 eval ({"start_val_loss", "start_val_ppl"}; empty without one), so
    a stage that ends worse than it started says so (tfctl.tracking.live.RunDisplay.stage_done)."""
    for record in read_metrics(metrics_path, kind="eval", stage=stage):
        if record.get("step") == 0:
            return {"start_val_loss": record["val_loss"], "start_val_ppl": record["val_ppl"]}
    return {}


class StageLoop:
    """Trains a RunJob's unfinished stages into its run directory (whose lock the caller holds)."""

    def __init__(
        self,
        job: RunJob,
        state: RunState,
        say: Callable[[str], None] = print,
        display: RunDisplay | None = None,  # live progress (tfctl.tracking.live); None: compact lines
    ):
        self.job, self.state, self.say = job, state, say
        self.display = display or RunDisplay(interactive=False)
        self.errors_before: dict[str, int] = {}  # each stage's error records before its launch

    def restart_from(self, names: list[str]) -> None:
        """Forget `names`, in an order a crash at any point leaves repairable: their directories are first
        renamed aside (atomic; a stage still marked done without its directory is refused with a hint to
        repeat the command), then their records dropped, then the state, then the set-aside copies deleted.
        Only ever inside RUN/stages/ (RunDir.stage refuses anything but a plain stage name)."""
        dirs = self.job.dirs
        for name in names:  # refused before anything changes: a stage directory that leads out of the run
            if dirs.stage(name).exists() and not is_inside(dirs.stage(name), dirs.root):
                raise UserError(f"{dirs.stage(name)}: leads outside {dirs.root}; refusing to delete it")
        for name in names:
            stage = dirs.stage(name)
            if stage.is_symlink():
                stage.unlink()
            elif stage.exists():
                os.replace(stage, dirs.removed(name))
        MetricsFile(dirs.metrics).drop_stages(set(names))
        self.state.drop(names)
        self.remove_set_aside()

    def remove_set_aside(self) -> None:
        """Delete what restart_from renamed aside (also what a killed one left)."""
        for path in self.job.dirs.set_aside():
            remove_tree(path, self.job.dirs.root)

    def check_unfinished(self) -> None:
        """The checkpoints and directories of every stage still to train: before the run writes anything."""
        job = self.job
        for name, fingerprint in zip(job.stage_names, job.fingerprints, strict=True):
            if self.state.stages().get(name, {}).get("status") != DONE:
                check_resumable(job.dirs, name, fingerprint, job.retrain_hint.format(stage=name))

    def offsets(self, index: int) -> dict:
        """Where stage `index` starts on the run's cumulative axes: where the stage before it ended."""
        if index == 0:
            return {"tokens_offset": 0, "flops_offset": 0.0, "device_seconds_offset": 0.0}
        end = self.state.stage(self.job.plans[index - 1].name)["result"]
        return {
            "tokens_offset": int(end["tokens"]),
            "flops_offset": float(end["flops"]),
            "device_seconds_offset": float(end["device_seconds"]),
        }

    def starts_grown(self, index: int) -> bool:
        """Whether stage `index` starts from grown weights (in init/) rather than a random init."""
        return index > 0 or self.job.start_from is not None

    def initial_weights(self, index: int) -> dict:
        """Stage `index`'s initial weights: the previous stage's export (stage 0: the `from` model directory),
        grown into init/. Returns the report."""
        job, plan = self.job, self.job.plans[index]
        entry, init = self.state.stage(plan.name), job.dirs.init(plan.name)
        if entry.get("growth") and (init / "config.json").is_file():
            return entry["growth"]  # grown before an interruption: reuse
        if index == 0:
            check_start(job.start_from, plan.config)
        source = job.dirs.final(job.plans[index - 1].name) if index else job.start_from
        self.state.update(plan.name, status=GROWING, fingerprint=job.fingerprints[index])
        remove_tree(init, job.dirs.root)  # a growth cut short before it was recorded
        probe = eval_batches(load_prepared(job.data_dir).tokens("val"), job.seq_len, 4, 1)[0][0]
        origin = job.plans[index - 1].name if index else source
        with self.display.activity(f"[{plan.name}] growing {origin} into {plan.name}"):
            report = job.grow(source, init, plan, index, probe)
        report["source"] = job.plans[index - 1].name if index else str(source)
        return report

    def stage_spec(self, index: int, growth: dict | None) -> StageSpec:
        job, plan = self.job, self.job.plans[index]
        model = load_model_config(job.dirs.init(plan.name)) if self.starts_grown(index) else plan.config
        continued = job.train.lr_schedule == "continue"
        optimizer_file = job.dirs.init(plan.name) / "optimizer.safetensors"
        if job.train.peak_flops:
            peak = {"flops": job.train.peak_flops, "source": "the recipe's train.peak_flops"}
        else:  # None on GPUs: the worker looks the device up
            peak = run_cpu_peak(self.state, job.launch, self.display, plan.name)
        return StageSpec(
            run_name=job.name,
            stage=plan.name,
            stage_index=index,
            model=config_to_dict(model),
            data_dir=str(job.data_dir),
            out_dir=str(job.dirs.stage(plan.name)),
            metrics_path=str(job.dirs.metrics),
            steps=plan.steps,
            global_batch=plan.global_batch,
            seq_len=job.seq_len,
            schedule=CosineSchedule(
                lr=plan.lr,
                min_lr=plan.min_lr,
                warmup_steps=job.plans[0].warmup_steps if continued else plan.warmup_steps,
                total=sum(p.steps for p in job.plans) if continued else plan.steps,
                offset=sum(p.steps for p in job.plans[:index]) if continued else 0,
            ),
            # one measured CPU peak for every MFU of the run (and of its baselines)
            train=job.train.model_copy(update={"peak_flops": peak["flops"] if peak else None}),
            peak_source=peak["source"] if peak else None,
            init_weights=str(job.dirs.init(plan.name)) if self.starts_grown(index) else None,
            init_optimizer=str(optimizer_file)
            if self.starts_grown(index) and optimizer_file.is_file()
            else None,
            seed=stage_seed(job.seed, index),
            fingerprint=job.fingerprints[index],
            growth=growth,
            tau=plan.tau,
            wandb=WandbSpec(
                mode=resolve_mode(job.wandb.mode or "online"),
                project=job.wandb.project,
                entity=job.wandb.entity,
                group=job.wandb.group,
                name=f"{job.dirs.root.name}/{plan.name}",
                job_type=job.wandb_job_type,
                tags=list(job.wandb.tags),
                dir=str(job.dirs.root),
                config=job.wandb_config,
                run_id=wandb_run_id(job.dirs.root, f"stage/{plan.name}"),
            ),
            **self.offsets(index),
        )

    def record_growth(self, index: int, growth: dict) -> None:
        name = self.job.plans[index].name
        if not self.state.stage(name).get("growth"):
            offsets = self.offsets(index)
            metrics = MetricsFile(self.job.dirs.metrics)
            metrics.write(
                {
                    "kind": "growth",
                    "stage": name,
                    "step": 0,
                    "tokens": offsets["tokens_offset"],
                    "flops": offsets["flops_offset"],
                    **growth,
                }
            )
            metrics.close()
        self.state.update(name, growth=growth)
        self.say(
            f"[{name}] grown from {growth['source']} ({growth['init']}): "
            f"{growth['params_before']:,} → {growth['params_after']:,} params, "
            f"max |Δlogits| {growth['max_abs_logit_diff']:.2e}, "
            f"loss {growth['loss_before']:.4f} → {growth['loss_after']:.4f}"
        )

    def train_stage(self, index: int) -> dict:
        job, plan = self.job, self.job.plans[index]
        started = time.perf_counter()  # the stage's elapsed time, growth to verified export: plan's estimates
        growth = None
        if self.starts_grown(index):
            growth = self.initial_weights(index)
            self.record_growth(index, growth)
        check_resumable(
            job.dirs, plan.name, job.fingerprints[index], job.retrain_hint.format(stage=plan.name)
        )
        spec = self.stage_spec(index, growth)
        job.dirs.stage(plan.name).mkdir(parents=True, exist_ok=True)
        spec.save(job.dirs.spec(plan.name))
        self.state.update(plan.name, status=TRAINING, fingerprint=job.fingerprints[index])
        self.say(
            f"[{plan.name}] training {plan.params:,} params for {plan.steps} steps "
            f"({plan.tokens:,} tokens) on {job.launch.world_size} rank(s)"
        )
        errors_before = self.errors_before[plan.name] = len(
            read_metrics(job.dirs.metrics, kind="error", stage=plan.name)
        )
        log = job.dirs.worker_log(plan.name)
        with (
            self.display.stage(plan.name, plan.steps, job.dirs.metrics),
            stop_requests.stage(job.dirs.stage(plan.name)),
        ):
            code = run_stage(
                job.dirs.spec(plan.name),
                job.launch,
                env=orchestrator_env(),  # the ranks stop if we die
                log_path=log,
                echo=self.display.verbose,  # the workers' output: worker.log, the console with --verbose
                prefix=self.display.tagged(""),  # "[run] " under compare -j N, else nothing
            )
        if code in (EXIT_INTERRUPTED, -signal.SIGINT):
            self.state.update(plan.name, status=FAILED, exit_code=code, error="interrupted")
            raise Interrupted(f"stage {plan.name} interrupted")
        result = verified_stage_end(job.dirs.final(plan.name), job.dirs.metrics, plan.name)
        if code != 0 and result is None and stop_requests.requested:  # the launcher may not pass on 75
            self.state.update(plan.name, status=FAILED, exit_code=EXIT_PREEMPTED, error="preempted")
            raise StagePreempted(
                last_error_line(log) or f"stage {plan.name} preempted; run the same command again"
            )
        if code != 0 and result is None:
            errors = read_metrics(job.dirs.metrics, kind="error", stage=plan.name)
            reason = errors[-1]["message"] if len(errors) > errors_before else exit_reason(code, log)
            self.state.update(plan.name, status=FAILED, exit_code=code, error=reason)
            raise TrainingError(
                f"stage {plan.name} failed: {reason}; log: {log}. Fix the cause and re-run the same "
                f"command to resume from its last checkpoint."
            )
        if result is None:
            self.state.update(plan.name, status=FAILED)
            raise TrainingError(
                f"stage {plan.name}: the worker exited 0 but left no stage_end record or verified export"
            )
        if code != 0:
            self.say(f"[{plan.name}] a rank exited with {code} after the export was complete and verified")
        start = stage_start(job.dirs.metrics, plan.name)  # kept beside the stage_end record, not inside it
        self.state.update(
            plan.name, status=DONE, result=result, start=start, elapsed_seconds=time.perf_counter() - started
        )
        if not job.train.peak_flops:  # a stage faster than the measured peak raised it: keep the higher one
            raise_run_cpu_peak(self.state, job.launch, plan.name, result)
        result = {**result, **start}
        self.display.stage_done(plan.name, result)
        return result

    def run(self) -> tuple[dict, bool]:
        """Train every unfinished stage in order. Returns ({stage: its stage_end record}, whether any trained).
        SIGUSR1/SIGTERM meanwhile: the running stage checkpoints and stops, no later stage starts."""
        with stop_requests.installed():
            return self._run_stages()

    def _run_stages(self) -> tuple[dict, bool]:
        self.state.data.update(
            name=self.job.name, data_dir=str(self.job.data_dir), updated=time.strftime("%Y-%m-%d %H:%M:%S")
        )
        self.state.save()
        link_data(self.job.dirs, self.job.data_dir)
        self.remove_set_aside()
        results, trained = {}, False
        for index, plan in enumerate(self.job.plans):
            if self.state.stage(plan.name).get("status") == DONE:
                check_finished(self.job.dirs, plan.name, self.job.retrain_hint.format(stage=plan.name))
                self.say(f"[{plan.name}] already done, skipped")
                results[plan.name] = self.state.stage(plan.name)["result"]
                continue
            if stop_requests.requested:
                raise StagePreempted(
                    f"preempted before stage {plan.name}; run the same command again to resume"
                )
            try:
                results[plan.name] = self.train_stage(index)
            except OSError as error:
                if error.errno not in ENVIRONMENT_ERRNOS:
                    raise
                errors = read_metrics(self.job.dirs.metrics, kind="error", stage=plan.name)
                new = len(errors) > self.errors_before.get(plan.name, 0)
                reason = errors[-1].get("message") if new else None
                raise stopped_by_machine(
                    self.job.dirs, self.state, plan.name, error, reason, self.say
                ) from None
            trained = True
        return results, trained
