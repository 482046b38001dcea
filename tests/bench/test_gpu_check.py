"""`make gpu-check` on a machine without a GPU: says so, lists what it would run, exits 0, writes nothing."""

import subprocess
import sys

import pytest
import torch
import yaml

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
    for name, command in gpu_check.commands((tmp_path / "work").resolve()).items():
        assert f"\n{name}: {' '.join(command)}" in listing
    recipe = yaml.safe_load(listing[listing.index("name: gpu-check") : listing.index("\n\ntrain: ")])
    assert recipe == gpu_check.RECIPE


def test_dry_run_commands_are_the_cli_a_user_types(tmp_path):
    commands = gpu_check.commands(tmp_path)
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
