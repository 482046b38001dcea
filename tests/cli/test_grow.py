import json
import os
import sys

import pytest
import torch
from typer.testing import CliRunner

from tests.tfctl_processes import run_tfctl_process
from tfctl.cli import app
from tfctl.errors import UserError
from tfctl.model import TransformerConfig, build_model
from tfctl.model_dir.weights import load_model, save_model_dir


def tfctl(*args):
    return run_tfctl_process(args, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_grow_model_dir_round_trip(model_dir, tmp_path):
    out = tmp_path / "grown"
    result = tfctl(
        "grow",
        model_dir,
        "--to",
        "qkv=24,proj=24,ffn=96",
        "--layers",
        "3",
        "-o",
        out,
        "--optimizer",
        "carry",
        "--init",
        "preserve",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["max_abs_logit_diff"] <= 1e-5
    assert report["params_after"] > report["params_before"]
    assert report["loss_after"] == pytest.approx(report["loss_before"], abs=1e-5)
    assert report["seconds"] > 0 and report["out"] == str(out)
    model, config = load_model(out)
    assert (config.qkv_tokens, config.n_layers, config.scale_mode) == (24, 3, "fixed")
    assert model.get_num_params() == report["params_after"]
    assert (out / "tokenizer.json").read_text() == (model_dir / "tokenizer.json").read_text()
    assert json.loads((out / "export.json").read_text())["growth"]["init"] == "preserve"

    from tfctl.model_dir.optimizer_file import load_moments_file

    moments, step = load_moments_file(out)
    assert step == 40
    assert moments["blocks.0.ffn.key_tokens.exp_avg"].shape == (96, 32)
    assert torch.count_nonzero(moments["blocks.0.ffn.key_tokens.exp_avg"][64:]) == 0
    assert torch.count_nonzero(moments["blocks.2.ffn.value_tokens.exp_avg_sq"]) == 0


def test_the_default_growth_is_the_papers(model_dir, tmp_path):
    """Without --init: random new key tokens and τ = sqrt(n) of the grown size; the report shows the jump."""
    out = tmp_path / "grown"
    result = tfctl("grow", model_dir, "--to", "qkv=24,proj=24,ffn=96", "-o", out, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["init"] == "paper" and report["max_abs_logit_diff"] > 1e-3
    assert json.loads((out / "export.json").read_text())["growth"]["init"] == "paper"
    model, config = load_model(out)
    assert (config.scale_mode, config.qkv_scale) == ("sqrt_n", None)
    assert model.blocks[0].ffn.tau == 96**0.5 and model.blocks[0].attention.key.tau == 24**0.5
    assert torch.count_nonzero(model.blocks[0].ffn.key_tokens[64:]) == 32 * 32  # every new key is random


def test_reset_leaves_the_optimizer_state_behind(model_dir, tmp_path, capsys):
    out = tmp_path / "grown"
    result = CliRunner().invoke(
        app, ["grow", str(model_dir), "--to", "qkv=20", "-o", str(out), "--init", "paper"]
    )
    assert result.exit_code == 0, result.output
    assert "max |Δlogits|" in result.output
    assert not (out / "optimizer.safetensors").exists()


@pytest.fixture
def transformer_dir(tmp_path):
    config = TransformerConfig(vocab_size=128, seq_len=32, n_layers=2, d_model=32, n_heads=4, ffn_hidden=64)
    return save_model_dir(build_model(config).state_dict(), config, tmp_path / "baseline")


REFUSALS = {  # case: (source, args, message)
    "shrink": ("model", ["--to", "qkv=8"], "cannot shrink"),
    "transformer": ("transformer", ["--to", "1m"], "baseline transformer"),
    "not-a-model": ("empty", ["--to", "1m"], "not a model directory"),
    "shrink-size": ("model", ["--to", "10k"], "growth cannot shrink"),
    "fewer-layers": ("model", ["--to", "qkv=16", "--layers", "1"], "fewer than the source's 2 blocks"),
    "bad-init": ("model", ["--to", "1m", "--init", "magic"], "--init must be one of"),
    "out-exists": ("model", ["--to", "qkv=20"], "already exists"),
}


def _refusal(case, model_dir, transformer_dir, tmp_path):
    kind, args, message = REFUSALS[case]
    source = {"model": model_dir, "transformer": transformer_dir, "empty": tmp_path / "empty"}[kind]
    source.mkdir(exist_ok=True)
    out = tmp_path / "out"
    if case == "out-exists":
        out = model_dir.parent / "taken"
        out.mkdir()
    return source, [*args, "-o", str(out)], message, out


@pytest.mark.parametrize("case", ["shrink", "transformer", "not-a-model"])
def test_refusals_are_one_line_exit_2_and_leave_nothing(case, model_dir, transformer_dir, tmp_path):
    source, args, message, out = _refusal(case, model_dir, transformer_dir, tmp_path)
    result = tfctl("grow", source, *args)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("case", REFUSALS)
def test_every_refusal_is_a_user_error(case, model_dir, transformer_dir, tmp_path):
    """In-process (no interpreter start per case): the CLI turns a UserError into one line + exit 2."""
    source, args, message, out = _refusal(case, model_dir, transformer_dir, tmp_path)
    result = CliRunner().invoke(app, ["grow", str(source), *args])
    assert isinstance(result.exception, UserError), result.output
    assert message in str(result.exception) and "\n" not in str(result.exception)
    assert out.exists() == (case == "out-exists")


def test_run_directory_needs_the_orchestrator(tmp_path, monkeypatch):
    (tmp_path / "state.json").write_text('{"stages": {}}')  # a valid, empty run state
    monkeypatch.setitem(
        sys.modules, "tfctl.run.append_stage", None
    )  # as if tfctl.run.append_stage did not exist
    result = CliRunner().invoke(app, ["grow", str(tmp_path), "--to", "354m", "--tokens", "30b"])
    assert isinstance(result.exception, UserError)
    assert str(result.exception) == "growing a run directory needs tfctl.run.append_stage"
