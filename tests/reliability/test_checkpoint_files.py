"""Checkpoint files that were cut short, bit-flipped or crafted to run code, on copies of the reference run's
real DeepSpeed checkpoints (no training here)."""

import pickle
import shutil

import pytest
import torch

from tfctl.errors import TrainingError
from tfctl.stage.manifest import verify_manifest, write_manifest
from tfctl.worker.checkpoint import LATEST, Checkpointer
from tfctl.worker.safe_load import safe_torch_load, use_safe_loader

pytestmark = pytest.mark.slow  # needs the reference `tfctl train` run

STATES = "mp_rank_00_model_states.pt"


@pytest.fixture
def checkpoints(reference, tmp_path):
    """A copy of the reference run's s2 checkpoints: step00000006 and step00000008, latest = 8."""
    return shutil.copytree(reference / "stages" / "s2" / "checkpoints", tmp_path / "checkpoints")


def test_every_checkpoint_has_a_matching_manifest(checkpoints):
    assert (checkpoints / LATEST).read_text() == "step00000008"
    for tag in ("step00000006", "step00000008"):
        assert verify_manifest(checkpoints / tag) is None


def test_truncated_and_flipped_files_are_detected(checkpoints):
    step = checkpoints / "step00000008"
    data = (step / STATES).read_bytes()
    (step / STATES).write_bytes(data[: len(data) // 2])
    assert verify_manifest(step) == f"{STATES} has {len(data) // 2} bytes, the manifest says {len(data)}"
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    (step / STATES).write_bytes(bytes(flipped))
    assert verify_manifest(step) == f"{STATES} does not match its sha256"
    (step / "manifest.json").unlink()
    assert verify_manifest(step).startswith("no manifest.json")


def test_resume_falls_back_past_a_corrupt_checkpoint(checkpoints):
    states = checkpoints / "step00000008" / STATES
    flipped = bytearray(states.read_bytes())
    flipped[100] ^= 0x01
    states.write_bytes(bytes(flipped))
    (checkpoints / ".partial-step00000010").mkdir()  # a save cut short
    said = []
    assert Checkpointer(checkpoints, keep=2, rank=0, say=said.append).choose_resume_tag() == "step00000006"
    assert said == [
        f"checkpoint {checkpoints / 'step00000008'} is corrupt: {STATES} does not match its sha256; "
        "falling back to step00000006"
    ]
    assert sorted(p.name for p in checkpoints.iterdir() if p.is_dir()) == ["step00000006"]
    assert (checkpoints / LATEST).read_text() == "step00000006"


class Payload:
    """What an attacker would put in a checkpoint: unpickling it runs a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_deepspeed_own_loader_would_run_a_pickled_payload(tmp_path):
    """Why we replace it: DeepSpeed 0.19.8 loads checkpoint files with torch.load(weights_only=False)."""
    from deepspeed.runtime.checkpoint_engine.torch_checkpoint_engine import TorchCheckpointEngine

    torch.save({"module": Payload(tmp_path / "ran")}, tmp_path / "evil.pt")
    TorchCheckpointEngine().load(str(tmp_path / "evil.pt"))
    assert (tmp_path / "ran").exists()


def test_a_checkpoint_carrying_code_is_refused_even_with_a_valid_manifest(checkpoints, tmp_path):
    from deepspeed.runtime.checkpoint_engine.torch_checkpoint_engine import TorchCheckpointEngine

    marker = tmp_path / "ran"
    step = checkpoints / "step00000008"
    genuine = safe_torch_load(step / STATES)  # the real file loads with weights_only=True
    torch.save({**genuine, "module": Payload(marker)}, step / STATES)
    write_manifest(step)  # whoever planted the file can write a matching manifest too
    with pytest.raises(pickle.UnpicklingError):
        safe_torch_load(step / STATES)

    class Engine:  # DeepSpeed's load path: every file through engine.checkpoint_engine.load
        checkpoint_engine = TorchCheckpointEngine()

        def load_checkpoint(self, directory, tag, **_):
            return self.checkpoint_engine.load(f"{directory}/{tag}/{STATES}"), {}

    engine = Engine()
    use_safe_loader(engine)
    with pytest.raises(TrainingError, match="refused to load, it holds more than tensors and plain data"):
        Checkpointer(checkpoints, keep=2, rank=0).load(engine, "step00000008")
    assert not marker.exists()


def test_exports_are_safetensors_and_json_only(reference):
    final = reference / "stages" / "s2" / "final"
    assert {p.suffix for p in final.iterdir()} == {".safetensors", ".json"}
