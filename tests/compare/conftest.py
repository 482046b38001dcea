"""One tiny 2-stage growth run through the real worker, shared by the compare tests (session-scoped)."""

import time

import pytest

TINY_RECIPE = """\
name: tiny
seed: 7
data: {source: shakespeare, tokenizer: "bpe:512", seq_len: 32}
model: {d_model: 32, n_layers: 2, n_heads: 4}
stages:
  - {name: s1, param_tokens: 16, steps: 20}
  - {name: s2, param_tokens: 48, steps: 20}
train: {global_batch: 8, lr: 3.0e-3, min_lr: 3.0e-4, warmup: 0.1, eval_interval: 10, eval_batches: 2,
        eval_batch_size: 8, checkpoint_interval: 100}
wandb: {mode: disabled}
baseline:
  - {name: scratch}
"""


@pytest.fixture(scope="session")
def growth_run(tmp_path_factory):
    """runs/tiny: two Tokenformer stages (20 steps each), trained once with `train_recipe`."""
    from tfctl.recipe import load_recipe
    from tfctl.run.orchestrate import train_recipe

    root = tmp_path_factory.mktemp("compare")
    recipe = root / "tiny.yaml"
    recipe.write_text(TINY_RECIPE)
    run_dir = root / "runs" / "tiny"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "disabled")
        train_recipe(load_recipe(recipe), run_dir=run_dir, say=lambda line: None)
    return run_dir


@pytest.fixture(scope="session")
def compared(growth_run):
    """The first `tfctl compare` of runs/tiny: trains the scratch baseline; logs to W&B offline."""
    from tfctl.compare import compare_run

    lines: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "offline")
        started = time.perf_counter()
        report = compare_run(growth_run, say=lines.append)
        seconds = time.perf_counter() - started
    return report, lines, seconds
