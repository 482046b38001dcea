"""One training stage on one rank: the components composed, torchtitan-style.

setup → (resume from checkpoint | initial weights [+ carried optimizer moments]) → train loop
(step, log, evaluate, checkpoint) → final evaluation → export `final/` → `stage_end` record.
"""

import logging
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.distributed as dist

from tfctl.data import TokenSampler, eval_batches, load_prepared
from tfctl.errors import UserError
from tfctl.model import build_model, config_from_dict
from tfctl.model.flops import training_flops_per_token
from tfctl.model.loss import perplexity
from tfctl.model_dir.optimizer_file import load_moments_file
from tfctl.model_dir.weights import load_state_dict
from tfctl.stage.exit_codes import NOTICE_PREFIX, NonFiniteLossError
from tfctl.stage.preemption import PreemptionWatch, StagePreempted
from tfctl.stage.throughput import peak_flops_per_device
from tfctl.tracking import Console, MetricsFile, Tracker
from tfctl.tracking.wandb_run import WandbRun, new_run_id
from tfctl.worker.checkpoint import Checkpointer, tag_for
from tfctl.worker.ds_config import BatchGeometry, build_ds_config
from tfctl.worker.export import export_final, is_plain_engine, load_moments, rank_param_checksums
from tfctl.worker.grad_clip import clips_alone, global_grad_norm
from tfctl.worker.optimizer import build_optimizer, set_lr
from tfctl.worker.progress import RunAxes, StageProgress
from tfctl.worker.tau_anneal import TauAnneal
from tfctl.worker.validation import validation_loss

log = logging.getLogger(__name__)


class StageTrainer:
    def __init__(self, spec, max_steps_this_run: int | None = None, started: float | None = None):
        self.spec = spec
        self.started = time.perf_counter() if started is None else started
        self.max_steps_this_run = max_steps_this_run
        self.rank = int(os.environ.get("RANK", 0))
        self.world_size = int(os.environ.get("WORLD_SIZE", 1))
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0))
        self.out_dir = Path(spec.out_dir)
        self.checkpointer = Checkpointer(
            self.out_dir / "checkpoints",
            spec.train.keep_checkpoints,
            self.rank,
            say=self.say,
            fingerprint=spec.fingerprint,
        )
        self.tracker = None
        self.preemption = PreemptionWatch(self.out_dir, self.rank, self.world_size)

    # ----------------------------------------------------------------------------------------------- setup
    def setup(self) -> None:
        import deepspeed
        from deepspeed.accelerator import get_accelerator

        spec = self.spec
        self.device_type = get_accelerator().device_name()
        self.device = (
            torch.device(self.device_type, self.local_rank)
            if self.device_type == "cuda"
            else torch.device(self.device_type)
        )
        if self.device_type == "cuda":
            torch.cuda.set_device(self.device)
        self.data = load_prepared(spec.data_dir)
        try:
            self.config = config_from_dict(spec.model)
        except (TypeError, ValueError) as error:
            raise UserError(f"spec.model: {error}") from None
        if self.config.vocab_size < self.data.vocab_size:
            raise UserError(
                f"spec.model.vocab_size {self.config.vocab_size} < the data's vocab size "
                f"{self.data.vocab_size} ({spec.data_dir})"
            )
        self.geometry = BatchGeometry.resolve(spec.global_batch, self.world_size, spec.train.micro_batch)

        torch.manual_seed(spec.seed)
        model = build_model(self.config)
        resume_tag = self.checkpointer.resume_tag()  # verified against its manifest; corrupt ones skipped
        if resume_tag is None and spec.init_weights:
            self._load_initial_weights(model)
        self.optimizer = build_optimizer(model, spec, self.device_type)
        self.engine, *_ = deepspeed.initialize(
            model=model.to(self.device), optimizer=self.optimizer, config=build_ds_config(spec, self.geometry)
        )
        if spec.train.compile:  # nn.Module.compile, in place: parameter names keep no `_orig_mod.` prefix
            self.engine.compile()
        self.plain = is_plain_engine(self.engine)
        if self.plain and self.world_size == 1:  # "all-reducing" one rank's gradients copies them twice
            self.engine.enable_backward_allreduce = False
        if clips_alone(spec.train, self.world_size) and not self.plain:  # DeepSpeed was told not to clip
            raise RuntimeError("a stage the worker clips must have a plain engine: a bug in tfctl.worker")

        self.progress = StageProgress(world_size=self.world_size)
        if resume_tag is not None:
            self.progress = StageProgress.from_dict(self.checkpointer.load(self.engine, resume_tag))
            self.say(
                f"resuming stage {spec.stage} from {resume_tag} "
                f"(step {self.progress.step}/{spec.steps}); initial weights ignored"
            )
        elif spec.init_optimizer:
            moments, step = load_moments_file(spec.init_optimizer)
            load_moments(self.engine, moments, step)
            self.progress.optimizer_step_offset = step

        self.anneal = TauAnneal.for_stage(self.engine.module, spec.tau)  # None unless τ anneals
        if self.anneal is not None:
            if spec.train.compile:
                raise UserError("model.scale_mode anneal changes τ every step: train.compile must be false")
            self.anneal.set(self.progress.step)  # a resumed stage: τ of the step it stopped at
        self.sampler = TokenSampler(
            self.data.tokens("train"), spec.seq_len, spec.global_batch, spec.seed, self.rank, self.world_size
        )
        if self.progress.sampler:
            self.sampler.load_state_dict(self.progress.sampler)
        self.val_batches = eval_batches(
            self.data.tokens("val"), spec.seq_len, spec.train.eval_batch_size, spec.train.eval_batches
        )
        self.schedule = spec.schedule
        self.flops_per_token = training_flops_per_token(self.config, spec.seq_len)
        self.axes = RunAxes(
            spec, self.flops_per_token, self.world_size, self.progress.wall_seconds, self.started
        )
        if self.rank == 0:
            self.peak = peak_flops_per_device(spec.train.peak_flops, self.device_type, spec.peak_source)
            self.peak_raised = False
            self._start_tracking()

    def _load_initial_weights(self, model) -> None:
        state = load_state_dict(self.spec.init_weights)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as error:
            first = str(error).strip().splitlines()[-1].strip()
            raise UserError(
                f"init_weights {self.spec.init_weights}: does not match spec.model: {first}"
            ) from None

    def _start_tracking(self) -> None:
        spec = self.spec
        MetricsFile(spec.metrics_path).truncate_stage(spec.stage, self.progress.step)
        self.progress.wandb_run_id = spec.wandb.run_id or self.progress.wandb_run_id or new_run_id()
        config = {**spec.wandb.config, "stage_spec": asdict(spec), "growth": spec.growth}
        wandb_run = WandbRun(spec.wandb, self.progress.wandb_run_id, config, Path(spec.metrics_path).parent)
        console = Console(spec.stage, spec.steps, start_step=self.progress.step)
        self.tracker = Tracker(spec.metrics_path, console, wandb_run)

    # ------------------------------------------------------------------------------------------------ loop
    def train(self) -> bool:
        """Run the stage to its end (True) or to --max-steps-this-run (False, checkpoint saved)."""
        spec, progress = self.spec, self.progress
        stop_at = spec.steps
        if self.max_steps_this_run is not None:
            stop_at = min(spec.steps, progress.step + self.max_steps_this_run)
        if progress.step == 0 and progress.val_step is None:
            self._evaluate(0)  # the starting point: what growth preserved (or a fresh init)
        while progress.step < stop_at:
            self.run_step(progress.step + 1, stop_at)
        return progress.step >= spec.steps

    def run_step(self, step: int, stop_at: int) -> None:
        """Step `step` and what is due after it: its record, an evaluation, a checkpoint."""
        spec, progress = self.spec, self.progress
        loss, grad_norm, seconds = self._train_step(step)
        self._observe_rate(self._rate_per_device(seconds), f"step {step}")
        progress.step, progress.stage_tokens = step, progress.stage_tokens + spec.tokens_per_step
        progress.step_seconds, progress.timed_steps = (
            progress.step_seconds + seconds,
            progress.timed_steps + 1,
        )
        progress.sampler = self.sampler.state_dict()
        if step % spec.log_interval == 0 or step == spec.steps:
            self._log_train(step, loss, grad_norm, seconds)
        # an anneal is evaluated where it ends (tau.steps; 0 for the other kinds)
        if step % spec.train.eval_interval == 0 or step in (spec.steps, spec.tau.steps):
            self._evaluate(step)
        preempted = self.preemption.agreed(self.device)  # collective: every rank stops after this step
        if preempted or step % spec.train.checkpoint_interval == 0 or step in (spec.steps, stop_at):
            self._checkpoint(step)
        if preempted and step < spec.steps:
            raise StagePreempted.at_step(spec.stage, step, spec.steps, tag_for(step))

    def _train_step(self, step: int) -> tuple[float, float, float]:
        started = time.perf_counter()
        set_lr(self.optimizer, self.schedule(step))
        if self.anneal is not None:
            self.anneal.set(step)
        x, y = next(self.sampler)  # batch(step - 1): a pure function of (seed, step), whatever the world size
        x, y = torch.as_tensor(x, device=self.device), torch.as_tensor(y, device=self.device)
        micro, accumulation = self.geometry.micro_batch, self.geometry.accumulation
        loss_sum = torch.zeros((), dtype=torch.float32, device=self.device)
        grad_norm = None
        for i in range(accumulation):
            rows = slice(i * micro, (i + 1) * micro)
            _, loss = self.engine(x[rows], y[rows])
            self.engine.backward(loss)
            loss_sum += loss.detach().float()
            if i == accumulation - 1:  # before the update: a non-finite step must never reach the weights
                mean_loss = self._global_mean(loss_sum, accumulation)
                if not math.isfinite(mean_loss):
                    raise NonFiniteLossError(self.spec.stage, step, mean_loss, self.checkpointer.latest_tag())
                if self.plain:
                    grad_norm = self._grad_norm()  # clips too where DeepSpeed does not (grad_clip.py)
            self.engine.step()
        if grad_norm is None:
            norm = self.engine.get_global_grad_norm()
            grad_norm = float(norm) if norm is not None else float("nan")
        return mean_loss, grad_norm, time.perf_counter() - started

    def _global_mean(self, loss_sum: torch.Tensor, accumulation: int) -> float:
        total = loss_sum.clone()
        if self.world_size > 1:
            dist.all_reduce(total)
        return total.item() / (accumulation * self.world_size)

    def _grad_norm(self) -> float:
        clip = self.spec.train.grad_clip if clips_alone(self.spec.train, self.world_size) else None
        return global_grad_norm(self.engine.module.parameters(), clip)

    def _evaluate(self, step: int) -> float:
        loss = validation_loss(
            self.engine, self.val_batches, self.rank, self.world_size, shard=self.spec.train.zero_stage < 3
        )
        self.progress.val_loss, self.progress.val_step = loss, step
        self._record("eval", step, val_loss=loss, val_ppl=perplexity(loss))
        return loss

    def _checkpoint(self, step: int) -> None:
        self.progress.wall_seconds = self.axes.wall_seconds()
        self.checkpointer.save(self.engine, step, self.progress.to_dict())
        if self.tracker is not None:
            self.tracker.flush()  # the held train records up to this checkpoint
            self.tracker.metrics.sync()

    def _rate_per_device(self, step_seconds: float) -> float:
        """Model FLOP/s per device of a step that took `step_seconds`."""
        return self.flops_per_token * self.spec.tokens_per_step / (step_seconds * self.world_size)

    def _observe_rate(self, flops_per_second: float, what: str) -> None:
        """Rank 0: model FLOP/s per device achieved; faster than the peak, it raises the peak (MFU ≤ 100 %)."""
        if self.rank != 0:
            return
        before = self.peak.flops
        if self.peak.observe(flops_per_second, what):
            self.say(
                f"{what} ran at {self.peak.flops:.4g} model FLOP/s per device, above the peak MFU divides by "
                f"({before:.4g}): that peak was low (measured while the machine was busy?), so MFU now "
                "divides by this rate",
                notice=not self.peak_raised,  # the console hears it once a stage, worker.log every time
            )
            self.peak_raised = True

    def _log_train(self, step: int, loss: float, grad_norm: float, seconds: float) -> None:
        if self.rank != 0:
            return
        tokens_per_second = self.spec.tokens_per_step / seconds
        self._record(
            "train",
            step,
            loss=loss,
            lr=self.schedule(step),
            grad_norm=grad_norm,
            tokens_per_second=tokens_per_second,
            step_seconds=seconds,
            mfu=self.peak.mfu(self._rate_per_device(seconds)),
        )

    def _record(self, kind: str, step: int, **values) -> None:
        if self.rank == 0 and self.tracker is not None:
            self.tracker.log(
                {
                    "kind": kind,
                    "stage": self.spec.stage,
                    "step": step,
                    **self.axes.fields(self.progress.stage_tokens),
                    **values,
                }
            )

    # ----------------------------------------------------------------------------------------------- finish
    def finish(self) -> None:
        """Final evaluation (reused when the last checkpoint already has it), export, `stage_end`."""
        spec, progress = self.spec, self.progress
        val_loss = progress.val_loss if progress.val_step == spec.steps else self._evaluate(spec.steps)
        fields = self.axes.fields(progress.stage_tokens)
        params = sum(getattr(p, "ds_numel", p.numel()) for p in self.engine.module.parameters())
        peak = getattr(self, "peak", None)  # rank 0 only
        # MFU over the training steps only (start-up, evals and checkpoints are in wall_seconds, not here:
        # `compare` splits a run's wall time into them), so two identical runs give the same MFU
        stage_rate = (
            self._rate_per_device(progress.step_seconds / progress.timed_steps)
            if progress.timed_steps
            else 0.0
        )
        self._observe_rate(stage_rate, "the stage's average")  # a resumed stage's steps before this process
        summary = {
            "val_loss": val_loss,
            "val_ppl": perplexity(val_loss),
            "params": params,
            "steps": progress.step,
            "world_size": self.world_size,
            "wandb_run_id": progress.wandb_run_id,
            "mfu": peak.mfu(stage_rate) if peak and stage_rate else None,
            "step_seconds": progress.step_seconds,  # the time MFU covers (timed_steps of them)
            "timed_steps": progress.timed_steps,
            "peak_flops": peak.flops if peak else None,  # the peak per device MFU divided by, and its origin
            "peak_source": peak.source if peak else None,
            "param_checksums": rank_param_checksums(self.engine, self.world_size),
        }
        annealed = self.anneal is not None and self.anneal.done(progress.step)
        export_final(
            self.engine,
            TauAnneal.final_config(self.config) if annealed else self.config,
            self.out_dir / "final",
            self.data.path / "tokenizer.json",
            step=progress.optimizer_step_offset + progress.step,
            rank=self.rank,
            extra={"stage": spec.stage, "run": spec.run_name, **fields, **summary},
        )
        self._record("stage_end", progress.step, **summary)
        self.say(
            f"stage {spec.stage} done: {progress.step} steps, val_loss {val_loss:.4f}, "
            f"final weights in {self.out_dir / 'final'}",
            notice=False,  # the orchestrator shows its own table
        )

    def record_error(self, error: Exception, step: int) -> None:
        self._record("error", step, message=str(error), error=type(error).__name__)

    def close(self, exit_code: int) -> None:
        if self.tracker is not None:
            self.tracker.close(exit_code)

    def say(self, text: str, notice: bool = True) -> None:
        """A message of rank 0; a notice reaches the user's console, the rest worker.log only."""
        if self.rank == 0:
            text = NOTICE_PREFIX + text if notice else text
            (self.tracker.console.message if self.tracker else lambda line: print(line, flush=True))(text)

    def stop_message(self) -> str:
        return (
            f"stage {self.spec.stage}: stopped at step {self.progress.step}/{self.spec.steps} "
            f"(--max-steps-this-run), checkpoint {tag_for(self.progress.step)} saved; rerun to continue"
        )
