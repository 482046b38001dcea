import pytest
import torch

from tfctl.model import TokenformerConfig, build_model
from tfctl.model_dir.weights import save_model_dir

torch.set_num_threads(1)  # tiny models: more threads only spin against the other jobs on a shared CPU

TINY = TokenformerConfig(
    vocab_size=128,
    seq_len=32,
    n_layers=2,
    d_model=32,
    n_heads=4,
    qkv_tokens=16,
    proj_tokens=16,
    ffn_tokens=64,
    rotary_pct=0.5,
)


def batch(generator: torch.Generator, size: int = 8) -> torch.Tensor:
    """Repetitive token streams (a random period-5 pattern per row): learnable in a few dozen steps."""
    pattern = torch.randint(0, TINY.vocab_size, (size, 5), generator=generator)
    return pattern.repeat(1, 7)[:, : TINY.seq_len + 1]


@pytest.fixture(scope="session")
def trained():
    """(config, state_dict, moments) of a tiny Tokenformer after 40 AdamW steps: weights are not at init."""
    torch.manual_seed(0)
    model = build_model(TINY)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1)
    tokens = batch(torch.Generator().manual_seed(0))
    losses = []
    for _ in range(40):
        _, loss = model(tokens[:, :-1], tokens[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5, losses  # it did train
    moments = {
        name: {key: optimizer.state[p][key].clone() for key in ("exp_avg", "exp_avg_sq")}
        for name, p in model.named_parameters()
    }
    state = {name: t.detach().clone() for name, t in model.state_dict().items()}
    return TINY, state, moments


@pytest.fixture
def model_dir(tmp_path, trained):
    """A trained tiny model directory with a tokenizer and optimizer.safetensors (step 40)."""
    from tfctl.growth.optimizer import flatten_moments
    from tfctl.model_dir.optimizer_file import save_moments_file

    config, state, moments = trained
    tokenizer = tmp_path / "tokenizer.json"
    tokenizer.write_text('{"kind": "byte"}\n')
    path = save_model_dir(state, config, tmp_path / "tiny", tokenizer=tokenizer)
    save_moments_file(flatten_moments(moments), 40, path / "optimizer.safetensors")
    return path
