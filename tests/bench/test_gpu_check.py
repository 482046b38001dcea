"""`make gpu-check` on a machine without a GPU: says so, lists what it would run, exits 0, writes nothing."""

import subprocess
import sys

import pytest
import torch
import yaml

from tests.conftest import PEAK_FLOPS
from tfctl.bench import gpu_check

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU, make gpu-check runs for real")


def test_without_a_gpu_it_runs_nothing_and_lists_what_it_would_run(tmp_path):
    out = tmp_path / "gpu.md"
    result = subprocess.run(
        [sys.executable, "-m", "tfctl.bench.gpu_check", "--work", str(tmp_path / "work"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    first, _, listing = result.stdout.partition("\n\n")
    assert first.startswith("gpu-check: no GPU here (torch.cuda.is_available() is False): nothing run.")
    assert not out.exists() and not (tmp_path / "work").exists()
    assert listing.rstrip("\n") == gpu_check.dry_run((tmp_path / "work").resolve())
    for number, check in enumerate(("peak", "step", "train", "grow", "export", "eval"), start=1):
        assert f"\n    {number}  {check} " in "\n" + listing, check
    for name, command in gpu_check.Checks().commands((tmp_path / "work").resolve()).items():
        assert f"\n{name}: {' '.join(command)}" in listing
    recipe = yaml.safe_load(listing[listing.index("name: gpu-check") : listing.index("\n\ntrain: ")])
    assert recipe == gpu_check.RECIPE


def test_dry_run_commands_are_the_cli_a_user_types(tmp_path):
    commands = gpu_check.Checks().commands(tmp_path)
    assert commands["train"][1:5] == ["-m", "tfctl", "train", str(tmp_path / "gpu-check.yaml")]
    assert commands["grow"][commands["grow"].index("--to") + 1] == "757m"
    assert "--optimizer" in commands["grow"] and commands["export"][-2:] == ["--hf", str(tmp_path / "hf")]
    train = gpu_check.RECIPE["train"]
    assert (train["precision"], train["zero_stage"]) == ("bf16", 1)
    assert [s["param_tokens"] for s in gpu_check.RECIPE["stages"]] == [576, 2140]  # the paper's 124M, 354M
    assert gpu_check.RECIPE["stages"][1]["optimizer"] == "carry"


def test_the_gpu_check_recipe_validates_and_plans():
    from tfctl.recipe import plan_recipe, validate_recipe

    plans = plan_recipe(validate_recipe(gpu_check.RECIPE)).stages
    assert [plan.steps for plan in plans] == [300, 200]
    assert [plan.config.qkv_tokens for plan in plans] == [576, 2140]
    # the paper's 124M and 354M less the embeddings a 50k vocabulary would add (bpe:8192 here)
    assert [round(plan.params / 1e6) for plan in plans] == [91, 322]


TINY = {
    "name": "tiny-check",
    "data": {"source": "shakespeare", "tokenizer": "bpe:512", "seq_len": 32},
    "model": {"d_model": 32, "n_layers": 2, "n_heads": 2},
    "stages": [
        {"name": "s1", "param_tokens": 16, "steps": 4},
        {"name": "s2", "param_tokens": 32, "steps": 4, "optimizer": "carry"},
    ],
    "train": {
        "global_batch": 4,
        "zero_stage": 1,
        "eval_interval": 2,
        "eval_batches": 2,
        "eval_batch_size": 4,
        "peak_flops": PEAK_FLOPS,
    },
    "wandb": {"mode": "disabled"},
}
TINY_SHAPE = dict(d_model=32, n_layers=1, n_heads=2, seq_len=32, batch=2, vocab_size=256)


def tiny_checks(**changes) -> gpu_check.Checks:
    values = dict(recipe=TINY, step_shape=TINY_SHAPE, grow_to="qkv=64,proj=64,ffn=256", device="cpu")
    return gpu_check.Checks(**{**values, "compile": False, **changes})


def test_a_failed_check_skips_the_checks_that_need_it_and_is_reported(tmp_path):
    broken = {**TINY, "train": {**TINY["train"], "lr": -1}}
    results, failures = gpu_check.run_checks(tiny_checks(recipe=broken), tmp_path, say=lambda _: None)
    assert set(results) == {"environment", "peak", "step"}  # the step table still ran
    assert failures["train"].startswith("RuntimeError: exit 2: error:") and "train.lr" in failures["train"]
    assert failures["grow"] == "skipped: train failed"
    assert failures["export"] == failures["eval"] == "skipped: grow failed"
    report = gpu_check.render(results, failures, 60.0)
    assert "## Failures\n\n- train: RuntimeError: exit 2" in report and "## bf16 matmul peak" in report


@pytest.mark.slow
def test_every_check_runs_end_to_end_on_a_tiny_cpu_variant(tmp_path):
    """The GPU checks' plumbing on CPU (fp32 ZeRO-1, no compile): train → grow --optimizer carry → export
    --hf → eval, and the report built from their JSON."""
    results, failures = gpu_check.run_checks(tiny_checks(), tmp_path, say=lambda _: None)
    assert failures == {}
    assert set(results["train"]["json"]["stages"]) == {"s1", "s2"}
    assert results["grow"]["json"]["params_after"] > results["grow"]["json"]["params_before"]
    assert (tmp_path / "hf" / "config.json").is_file()
    assert results["eval"]["json"]["loss"] > 0 and results["eval"]["json"]["tokens"] > 0
    assert [row["case"] for row in results["step"]["training"]] == [
        "reference-gpt eager bf16",
        "tokenformer eager bf16",
        "transformer eager bf16",
    ]
    report = gpu_check.render(results, failures, 60.0)
    for heading in ("## Failures\n\nnone", "## Training step", "## train (", "## grow (", "## eval ("):
        assert heading in report
