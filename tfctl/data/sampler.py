"""Training batches: random windows of a token stream, a pure function of (seed, step).

The global batch of step k is drawn first and each data-parallel rank takes its own contiguous slice, so the
data seen at step k does not depend on the world size, and resuming needs nothing but the step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tfctl.errors import DataError

if TYPE_CHECKING:
    import torch


def _windows(tokens: np.ndarray, starts: np.ndarray, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-token targets for windows of seq_len + 1 tokens starting at `starts`."""
    import torch  # here, so `tfctl data ...` does not pay for importing torch

    windows = np.asarray(tokens)[starts[:, None] + np.arange(seq_len + 1)]  # (batch, seq_len + 1)
    # each half cast into its own contiguous array (losses call .view(-1)): numpy only, half the time of
    # slicing a torch tensor twice (~9 vs ~18 µs a batch)
    return torch.from_numpy(windows[:, :-1].astype(np.int64)), torch.from_numpy(
        windows[:, 1:].astype(np.int64)
    )


def _check_length(tokens: np.ndarray, seq_len: int) -> None:
    if len(tokens) < seq_len + 1:
        raise DataError(f"split holds {len(tokens)} tokens, fewer than seq_len + 1 = {seq_len + 1}")


class TokenSampler:
    """Random windows of `seq_len + 1` tokens, this rank's share of a global batch per step."""

    def __init__(
        self,
        tokens: np.ndarray,
        seq_len: int,
        global_batch: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ):
        if global_batch % world_size:
            raise ValueError(f"global_batch {global_batch} is not divisible by world_size {world_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        _check_length(tokens, seq_len)
        self.tokens, self.seq_len, self.global_batch, self.seed = tokens, seq_len, global_batch, seed
        self.rank, self.world_size = rank, world_size
        self.step = 0

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's (x, y) for `step`: int64, shape (global_batch // world_size, seq_len)."""
        rng = np.random.default_rng([self.seed, step])
        starts = rng.integers(0, len(self.tokens) - self.seq_len, size=self.global_batch)
        per_rank = self.global_batch // self.world_size
        return _windows(self.tokens, starts[self.rank * per_rank : (self.rank + 1) * per_rank], self.seq_len)

    def __iter__(self):
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.batch(self.step)
        self.step += 1
        return batch

    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "seed": self.seed,
            "seq_len": self.seq_len,
            "global_batch": self.global_batch,
            "num_tokens": len(self.tokens),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a saved state; the world size may differ, the stream may not."""
        for name in ("seq_len", "global_batch", "num_tokens"):
            if state[name] != self.state_dict()[name]:
                raise ValueError(
                    f"sampler state has {name}={state[name]}, this sampler {self.state_dict()[name]}"
                )
        self.seed, self.step = state["seed"], state["step"]


def eval_batches(
    tokens: np.ndarray, seq_len: int, batch_size: int, num_batches: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Evenly spaced windows over the whole split, the same for every caller, so evaluations compare exactly.

    Windows do not overlap when the split holds at least batch_size * num_batches * seq_len + 1 tokens.
    """
    _check_length(tokens, seq_len)
    starts = np.linspace(0, len(tokens) - seq_len - 1, batch_size * num_batches).astype(np.int64)
    return [
        _windows(tokens, starts[i * batch_size : (i + 1) * batch_size], seq_len) for i in range(num_batches)
    ]
