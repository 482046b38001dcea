"""The DeepSpeed config of a stage: batch geometry, ZeRO stage, precision, clipping. A pure function.

The global batch is the recipe's whatever the world size: each rank gets `global_batch / world_size`
sequences per optimizer step, fed as `accumulation` micro-batches of `micro_batch` sequences. Every
micro-batch has the same number of (all valid) tokens, so DeepSpeed's 1/accumulation loss scaling and its
mean over ranks make the gradient exactly the mean over the global batch.
"""

from dataclasses import dataclass

from tfctl.errors import UserError
from tfctl.worker.grad_clip import clips_alone


@dataclass(frozen=True)
class BatchGeometry:
    global_batch: int
    world_size: int
    micro_batch: int  # sequences per rank per micro-step
    accumulation: int  # micro-steps per optimizer step

    @property
    def rank_batch(self) -> int:
        return self.micro_batch * self.accumulation

    @classmethod
    def resolve(cls, global_batch: int, world_size: int, micro_batch: int | None) -> "BatchGeometry":
        if global_batch % world_size:
            raise UserError(f"global_batch {global_batch} is not divisible by the world size {world_size}")
        rank_batch = global_batch // world_size
        micro_batch = micro_batch or rank_batch
        if micro_batch <= 0 or rank_batch % micro_batch:
            raise UserError(
                f"micro_batch {micro_batch} does not divide the per-rank batch {rank_batch} "
                f"(global_batch {global_batch} / world size {world_size})"
            )
        return cls(global_batch, world_size, micro_batch, rank_batch // micro_batch)


def build_ds_config(spec, geometry: BatchGeometry) -> dict:
    """The dict passed to `deepspeed.initialize(config=...)`. The optimizer is a client one (see optimizer.py)."""
    train = spec.train  # validated by the recipe schema: precision and zero_stage are known values
    config = {
        "train_batch_size": geometry.global_batch,
        "train_micro_batch_size_per_gpu": geometry.micro_batch,
        "gradient_accumulation_steps": geometry.accumulation,
        # a one-rank fp32 ZeRO-0 stage clips in the worker, with DeepSpeed's arithmetic (grad_clip.py)
        "gradient_clipping": 0.0 if clips_alone(train, geometry.world_size) else train.grad_clip or 0.0,
        "zero_optimization": {"stage": train.zero_stage},
        "zero_allow_untested_optimizer": True,  # torch's AdamW on CPU is a client optimizer
        "bf16": {"enabled": train.precision == "bf16"},
        "fp16": {"enabled": train.precision == "fp16", "loss_scale": 0, "initial_scale_power": 16},
        "steps_per_print": 2**31 - 1,  # we log; DeepSpeed stays quiet
        "wall_clock_breakdown": False,
    }
    if train.zero_stage == 3:
        # gather the full fp32 weights at save time is done by us (export.py); keep 16-bit gather off
        config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] = False
    return config
