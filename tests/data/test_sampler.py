import numpy as np
import pytest
import torch

from tfctl.data import TokenSampler, eval_batches

TOKENS = np.arange(10_000, dtype=np.uint16)  # each token is its own position


def test_batches_are_next_token_windows():
    x, y = TokenSampler(TOKENS, seq_len=16, global_batch=8, seed=0).batch(0)
    assert x.shape == y.shape == (8, 16) and x.dtype == y.dtype == torch.int64
    assert x.is_contiguous() and y.is_contiguous()
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert torch.equal(x[:, :1] + torch.arange(1, 17), y)  # each window is contiguous in TOKENS


def test_batches_are_the_recorded_ones():
    """The stream is part of every run's numbers (resume, world sizes, tests/worker/test_step_numerics.py):
    these window starts were recorded from the sampler before its gather went numpy-only (issue 28)."""
    sampler = TokenSampler(TOKENS, seq_len=16, global_batch=8, seed=5)
    recorded = {
        0: [6697, 8037, 226, 8066, 4681, 5145, 6292, 2853],
        1: [1320, 7729, 7769, 4699, 8771, 6947, 8470, 8152],
        77: [8603, 4154, 6135, 6016, 6004, 5050, 7585, 7479],
    }
    for step, starts in recorded.items():
        x, y = sampler.batch(step)
        assert torch.equal(x, torch.tensor(starts)[:, None] + torch.arange(16))
        assert torch.equal(y, x + 1)
    rank_1 = TokenSampler(TOKENS, seq_len=16, global_batch=8, seed=5, rank=1, world_size=2)
    assert rank_1.batch(1)[0][:, 0].tolist() == recorded[1][4:]


def test_same_global_batch_for_any_world_size():
    single = TokenSampler(TOKENS, seq_len=32, global_batch=8, seed=7)
    ranks = [TokenSampler(TOKENS, seq_len=32, global_batch=8, seed=7, rank=r, world_size=4) for r in range(4)]
    for step in (0, 1, 123):
        x, y = single.batch(step)
        parts = [sampler.batch(step) for sampler in ranks]
        assert torch.equal(torch.cat([p[0] for p in parts]), x) and torch.equal(
            torch.cat([p[1] for p in parts]), y
        )
    two = [TokenSampler(TOKENS, seq_len=32, global_batch=8, seed=7, rank=r, world_size=2) for r in range(2)]
    assert torch.equal(torch.cat([s.batch(5)[0] for s in two]), single.batch(5)[0])


def test_batches_depend_on_seed_and_step_only():
    a, b = TokenSampler(TOKENS, 32, 8, seed=1), TokenSampler(TOKENS, 32, 8, seed=1)
    assert torch.equal(a.batch(3)[0], b.batch(3)[0])
    assert not torch.equal(a.batch(3)[0], a.batch(4)[0])
    assert not torch.equal(a.batch(3)[0], TokenSampler(TOKENS, 32, 8, seed=2).batch(3)[0])


def test_resume_from_saved_state_reproduces_next_batches():
    sampler = TokenSampler(TOKENS, seq_len=32, global_batch=8, seed=3)
    for _ in range(5):
        next(sampler)
    state = sampler.state_dict()
    expected = [next(sampler)[0] for _ in range(3)]
    assert state["step"] == 5 and len(str(state)) < 200
    # resumed on two ranks: the two halves of each batch
    resumed = [
        TokenSampler(TOKENS, seq_len=32, global_batch=8, seed=0, rank=r, world_size=2) for r in range(2)
    ]
    for sampler in resumed:
        sampler.load_state_dict(state)
    for batch in expected:
        assert torch.equal(torch.cat([next(s)[0] for s in resumed]), batch)


def test_sampler_rejects_bad_shapes():
    with pytest.raises(ValueError, match="divisible"):
        TokenSampler(TOKENS, seq_len=8, global_batch=6, seed=0, world_size=4)
    other = TokenSampler(TOKENS, seq_len=16, global_batch=8, seed=0)
    with pytest.raises(ValueError, match="seq_len"):
        other.load_state_dict(TokenSampler(TOKENS, seq_len=8, global_batch=8, seed=0).state_dict())


def test_eval_batches_are_fixed_and_spread_over_the_split():
    first = eval_batches(TOKENS, seq_len=64, batch_size=4, num_batches=3)
    again = eval_batches(TOKENS, seq_len=64, batch_size=4, num_batches=3)
    assert len(first) == 3 and all(torch.equal(a[0], b[0]) for a, b in zip(first, again, strict=True))
    starts = torch.cat([x[:, 0] for x, _ in first])
    assert starts[0] == 0 and first[-1][1][-1, -1] == TOKENS[-1]  # first and last tokens are used
    assert torch.all(starts.diff() >= 64)  # long enough split: no window overlaps the next
    assert first[0][0].shape == (4, 64)
