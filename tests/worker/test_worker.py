"""Real stages of a tiny Tokenformer on Shakespeare: one rank in-process launches, two ranks through the
`deepspeed` launcher and torchrun. Each launch is shared by several assertions (DeepSpeed start-up is slow)."""

import json
import math
import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from tfctl.launch import free_port, run_stage
from tfctl.recipe.schema import LaunchSection
from tfctl.stage.exit_codes import EXIT_NON_FINITE

pytestmark = pytest.mark.slow  # every test here launches real stages (DeepSpeed start-up, 1-2 ranks)

QUIET = {"WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
TIMEOUT = 300


def records(out_dir: Path, kind: str) -> list[dict]:
    lines = (Path(out_dir) / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def train_losses(out_dir: Path) -> list[float]:
    return [r["loss"] for r in records(out_dir, "train")]


def stage_end(out_dir: Path) -> dict:
    (end,) = records(out_dir, "stage_end")
    return end


def launch(spec: Path, env: dict | None = None, worker_args: list[str] | None = None, **settings) -> int:
    return run_stage(
        spec,
        LaunchSection(**settings),
        env={**QUIET, **(env or {})},
        log_path=spec.parent / "worker.log",
        worker_args=worker_args,
        timeout=TIMEOUT,
    )


def reloaded_val_loss(final: Path, data_dir: Path, spec_path: Path) -> float:
    """The val loss of the exported model directory, computed without DeepSpeed."""
    from tfctl.data import eval_batches, load_prepared
    from tfctl.model_dir.weights import load_model

    spec = json.loads(spec_path.read_text())
    model, _ = load_model(final)
    model.eval()
    batches = eval_batches(
        load_prepared(data_dir).tokens("val"),
        spec["seq_len"],
        spec["train"]["eval_batch_size"],
        spec["train"]["eval_batches"],
    )
    with torch.no_grad():
        return sum(model(x, y)[1].item() for x, y in batches) / len(batches)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, make_spec) -> Path:
    """World size 1, global batch B in one micro-batch, uninterrupted: what the other runs must match."""
    out = tmp_path_factory.mktemp("reference")
    assert launch(make_spec(out)) == 0, (out / "worker.log").read_text()[-3000:]
    return out


def test_single_rank_stage(reference, data_dir):
    end = stage_end(reference)
    losses = train_losses(reference)
    assert len(losses) == 12 and losses[-1] < losses[0] - 0.3
    assert [r["step"] for r in records(reference, "eval")] == [0, 6, 12]
    assert end["steps"] == 12 and end["tokens"] == end["stage_tokens"] == 12 * 8 * 32
    assert end["flops"] == pytest.approx(end["stage_tokens"] * records(reference, "train")[0]["flops"] / 256)
    assert end["val_ppl"] == pytest.approx(math.exp(end["val_loss"]))
    final = reference / "final"
    assert {p.name for p in final.iterdir()} >= {
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "optimizer.safetensors",
    }
    assert reloaded_val_loss(final, data_dir, reference / "spec.json") == pytest.approx(
        end["val_loss"], abs=1e-5
    )
    with safe_open(str(final / "optimizer.safetensors"), "pt") as f:
        assert f.metadata()["step"] == "12"
        assert "blocks.0.ffn.key_tokens.exp_avg_sq" in f.keys()
    checkpoints = reference / "checkpoints"
    assert (checkpoints / "latest").read_text() == "step00000012"
    assert sorted(p.name for p in checkpoints.glob("step*")) == ["step00000006", "step00000012"]


def test_resume_matches_uninterrupted_run(reference, tmp_path, make_spec):
    spec = make_spec(tmp_path)
    assert launch(spec, worker_args=["--max-steps-this-run", "5"]) == 0
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step00000005"
    assert not (tmp_path / "final").exists()
    # resumed from spec.json as tfctl wrote it before the schedule had one shape (#25): train's LR settings
    # beside the schedule, and a restarted schedule without its total
    older = json.loads(spec.read_text())
    older["schedule"]["total"] = None
    older["train"].update(lr=1.0, min_lr=0.5, warmup=0.5, lr_schedule="restart")  # never read
    spec.write_text(json.dumps(older))
    assert launch(spec) == 0
    assert "resuming stage s0 from step00000005" in (tmp_path / "worker.log").read_text()
    assert [r["step"] for r in records(tmp_path, "train")] == list(range(1, 13))  # no duplicates
    assert train_losses(tmp_path) == pytest.approx(train_losses(reference), abs=1e-6)
    assert stage_end(tmp_path)["val_loss"] == pytest.approx(stage_end(reference)["val_loss"], abs=1e-6)


def test_an_annealed_stage_resumes_from_an_older_spec_with_the_same_losses(tmp_path, make_spec):
    """τ held below sqrt(n) (as `preserve` growth leaves it), annealed over 8 of the 12 steps; resumed at step 5
    from spec.json as tfctl wrote it before the τ policy (`tau_anneal_steps`)."""
    anneal = {
        "model": {"scale_mode": "fixed", "qkv_scale": 2.0, "proj_scale": 2.0, "ffn_scale": 3.0},
        "tau": {"kind": "anneal", "steps": 8},
    }
    reference = make_spec(tmp_path / "reference", **anneal)
    assert launch(reference) == 0, (reference.parent / "worker.log").read_text()[-3000:]
    spec = make_spec(tmp_path / "resumed", **anneal)
    assert launch(spec, worker_args=["--max-steps-this-run", "5"]) == 0
    older = json.loads(spec.read_text())
    assert older.pop("tau") == anneal["tau"]
    spec.write_text(json.dumps({**older, "tau_anneal_steps": 8}))
    assert launch(spec) == 0
    assert "resuming stage s0 from step00000005" in (spec.parent / "worker.log").read_text()
    assert train_losses(spec.parent) == train_losses(reference.parent)
    for run in (spec, reference):  # evaluated where the anneal ends too
        assert [r["step"] for r in records(run.parent, "eval")] == [0, 6, 8, 12]
    assert json.loads((spec.parent / "final" / "config.json").read_text())["scale_mode"] == "sqrt_n"


def test_mfu_never_passes_100_percent_when_the_peak_given_is_too_low(tmp_path, make_spec):
    """A peak measured on a busy machine is too low: the first step faster than it raises it, and says so."""
    spec = make_spec(tmp_path, steps=3, peak_flops=1.0, eval_interval=3, checkpoint_interval=3)
    assert launch(spec) == 0, (tmp_path / "worker.log").read_text()[-3000:]
    mfus = [r["mfu"] for r in records(tmp_path, "train")]
    end = stage_end(tmp_path)
    assert len(mfus) == 3 and all(0 < m <= 1.0 for m in mfus) and mfus[0] == pytest.approx(1.0)
    assert 0 < end["mfu"] <= 1.0
    assert end["peak_flops"] > 1e6 and end["peak_source"].endswith(
        "rate, above the 1 FLOP/s of train.peak_flops"
    )
    log = (tmp_path / "worker.log").read_text()
    assert "step 1 ran at " in log and "above the peak MFU divides by (1)" in log


def test_a_stages_mfu_covers_its_training_steps_across_a_resume_not_its_start_up_or_evals(
    tmp_path, make_spec
):
    """Two identical stages must give the same MFU (#26): start-up, evals and checkpoints stay out of it."""
    spec = make_spec(tmp_path, steps=6, peak_flops=1e15, eval_interval=2, checkpoint_interval=2)
    assert launch(spec, worker_args=["--max-steps-this-run", "4"]) == 0
    assert launch(spec) == 0, (tmp_path / "worker.log").read_text()[-3000:]
    end, trains = stage_end(tmp_path), records(tmp_path, "train")
    assert end["timed_steps"] == 6 == len(trains)  # the first attempt's steps are kept in the checkpoint
    assert end["step_seconds"] == pytest.approx(sum(r["step_seconds"] for r in trains), rel=1e-9)
    assert end["step_seconds"] < end["wall_seconds"]  # two start-ups and four evals are outside it
    flops_per_step = end["stage_flops"] / 6
    assert end["mfu"] == pytest.approx(flops_per_step * 6 / end["step_seconds"] / 1e15, rel=1e-9)


def test_non_finite_loss_stops_with_exit_3(tmp_path, make_spec):
    # an LR this large sends the weights to ~1e37: the next forward overflows for real
    spec = make_spec(
        tmp_path,
        schedule={"lr": 1e36, "min_lr": 1e36, "warmup_steps": 0},
        checkpoint_interval=1,
        eval_interval=100,
    )
    assert launch(spec) == EXIT_NON_FINITE
    (error,) = records(tmp_path, "error")
    step = error["step"]
    assert step >= 2 and "non-finite loss" in error["message"]
    log = (tmp_path / "worker.log").read_text()
    assert f"non-finite loss (nan) at step {step}" in log or f"non-finite loss (inf) at step {step}" in log
    latest = (tmp_path / "checkpoints" / "latest").read_text()
    assert latest == f"step{step - 1:08d}"
    assert (tmp_path / "checkpoints" / latest / "mp_rank_00_model_states.pt").is_file()
    assert not (tmp_path / "final").exists()


def launch_carried(reference: Path, out: Path, make_spec, **settings) -> Path:
    """One step from the reference's final weights and moments (a grown stage with `optimizer: carry`)."""
    final = reference / "final"
    spec = make_spec(
        out, steps=1, init_weights=str(final), init_optimizer=str(final / "optimizer.safetensors"), **settings
    )
    assert launch(spec) == 0, (out / "worker.log").read_text()[-3000:]
    return out


@pytest.fixture(scope="module")
def carried(reference, tmp_path_factory, make_spec) -> Path:
    return launch_carried(reference, tmp_path_factory.mktemp("carried"), make_spec)


def test_initial_weights_and_carried_moments(reference, carried):
    final = reference / "final"
    (start, *_) = records(carried, "eval")
    assert start["step"] == 0 and start["val_loss"] == pytest.approx(
        stage_end(reference)["val_loss"], abs=1e-6
    )
    with (
        safe_open(str(carried / "final" / "optimizer.safetensors"), "pt") as after,
        safe_open(str(final / "optimizer.safetensors"), "pt") as before,
    ):
        assert after.metadata()["step"] == "13"  # 12 carried + 1
        name = "blocks.1.ffn.value_tokens.exp_avg"
        cosine = torch.nn.functional.cosine_similarity(
            after.get_tensor(name).flatten(), before.get_tensor(name).flatten(), dim=0
        )
        assert cosine > 0.5  # 0.9·m_carried + 0.1·g: the carried moment dominates


@pytest.mark.parametrize("zero_stage", [1, 2, 3])
def test_carried_moments_load_at_every_zero_stage(zero_stage, reference, carried, tmp_path, make_spec):
    """ZeRO 1/2 create their moments at the first step: carried ones must still land (issue 15's
    `exp_avg not found in optimizer state fragment`), and the step after them is ZeRO 0's."""
    from safetensors.torch import load_file

    out = launch_carried(reference, tmp_path, make_spec, zero_stage=zero_stage)
    after, expected = (load_file(str(d / "final" / "optimizer.safetensors")) for d in (out, carried))
    assert after.keys() == expected.keys()
    for name, tensor in after.items():
        assert torch.allclose(tensor, expected[name], rtol=1e-4, atol=1e-7), name
    with safe_open(str(out / "final" / "optimizer.safetensors"), "pt") as f:
        assert f.metadata()["step"] == "13"
    assert train_losses(out) == pytest.approx(train_losses(carried), abs=1e-5)


def test_two_ranks_through_deepspeed_launcher(reference, tmp_path, make_spec, data_dir):
    """World size 2 with micro-batch B/2 reproduces the world-size-1 loss curve; ranks stay identical; W&B offline;
    DeepSpeed's shared-memory buffers (66 MB of RAM a rank, created under this port's name) are not left behind."""
    wandb_dir = tmp_path / "wb"
    spec = make_spec(
        tmp_path, micro_batch=4, wandb={"mode": "offline", "dir": str(wandb_dir), "name": "test/s0"}
    )
    port = free_port()
    code = launch(
        spec, env={"WANDB_MODE": "offline"}, launcher="deepspeed", nproc_per_node=2, master_port=port
    )
    assert code == 0, (tmp_path / "worker.log").read_text()[-3000:]
    assert not list(Path("/dev/shm").glob(f"deepspeed_allreduce_buffer_{os.getuid()}_*_{port}_*"))
    end = stage_end(tmp_path)
    assert end["world_size"] == 2
    assert train_losses(tmp_path) == pytest.approx(train_losses(reference), abs=1e-4)
    checksums = end["param_checksums"]
    assert len(checksums) == 2 and checksums[0] == checksums[1]
    assert end["device_seconds"] == pytest.approx(2 * end["wall_seconds"])
    assert reloaded_val_loss(tmp_path / "final", data_dir, spec) == pytest.approx(end["val_loss"], abs=1e-5)
    assert end["val_loss"] == pytest.approx(stage_end(reference)["val_loss"], abs=1e-4)
    runs = list((wandb_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and runs[0].name.endswith(end["wandb_run_id"])


@pytest.mark.parametrize("zero_stage,launcher", [(1, "torchrun"), (2, "deepspeed")])
def test_zero_export_equals_live_weights(zero_stage, launcher, reference, tmp_path, make_spec, data_dir):
    """ZeRO 1/2 with 2 gradient-accumulation micro-batches per rank: same curve; the export is the fp32 master."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    from safetensors.torch import load_file

    spec = make_spec(tmp_path, micro_batch=2, zero_stage=zero_stage)
    assert launch(spec, launcher=launcher, nproc_per_node=2) == 0, (tmp_path / "worker.log").read_text()[
        -3000:
    ]
    assert train_losses(tmp_path) == pytest.approx(train_losses(reference), abs=1e-4)
    exported = load_file(str(tmp_path / "final" / "model.safetensors"))
    consolidated = get_fp32_state_dict_from_zero_checkpoint(str(tmp_path / "checkpoints"))
    assert exported.keys() == consolidated.keys()
    for name, tensor in exported.items():
        assert tensor.dtype == torch.float32 and torch.equal(tensor, consolidated[name]), name
    end = stage_end(tmp_path)
    assert end["param_checksums"][0] == end["param_checksums"][1]
    assert reloaded_val_loss(tmp_path / "final", data_dir, spec) == pytest.approx(end["val_loss"], abs=1e-5)
    moments = load_file(str(tmp_path / "final" / "optimizer.safetensors"))
    assert moments["embedding.weight.exp_avg_sq"].shape == exported["embedding.weight"].shape
    reference_moments = load_file(str(reference / "final" / "optimizer.safetensors"))
    assert torch.allclose(
        moments["embedding.weight.exp_avg"], reference_moments["embedding.weight.exp_avg"], atol=1e-5
    )
