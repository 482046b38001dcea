"""torch.load that cannot run code: `weights_only=True`, plus the few plain-data DeepSpeed classes its
checkpoints hold (ZeRO's stage enum, the loss scaler, fragment addresses).

DeepSpeed 0.19.8's TorchCheckpointEngine.load calls `torch.load(path, weights_only=False)`: a checkpoint
file carrying a pickled callable would run it. `use_safe_loader` routes the engine's loads through here.
"""

import torch


def _allowed_globals() -> list:
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [ZeroStageEnum, LossScaler, DynamicLossScaler, fragment_address]


def safe_torch_load(path, map_location=None):
    with torch.serialization.safe_globals(_allowed_globals()):
        return torch.load(path, map_location=map_location, weights_only=True)


def use_safe_loader(engine) -> None:
    """Every file DeepSpeed reads in engine.load_checkpoint goes through its checkpoint engine's `load`."""
    engine.checkpoint_engine.load = safe_torch_load
