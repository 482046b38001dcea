"""Tiny models with a real tokenizer, and local lm-eval tasks built from the shipped Shakespeare corpus."""

import importlib.util
import json
import os

import pytest
import torch

from tests.conftest import REPO
from tfctl.data.sources import builtin_corpus
from tfctl.data.tokenizer import padded_vocab_size, train_bpe, with_eos
from tfctl.model import TokenformerConfig, TransformerConfig, build_model
from tfctl.model_dir.weights import save_model_dir

torch.set_num_threads(1)  # tiny models: more threads only spin against the other jobs on a shared CPU
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

SEQ_LEN = 64


@pytest.fixture(scope="session")
def corpus() -> str:
    """Two plays: enough text for a 384-token BPE and a few hundred task examples."""
    return "\n".join(path.read_text(encoding="utf-8") for path in builtin_corpus("shakespeare").paths[:2])


@pytest.fixture(scope="session")
def tokenizer_path(tmp_path_factory, corpus):
    tokenizer = with_eos(train_bpe([corpus], 384))
    path = tmp_path_factory.mktemp("tokenizer") / "tokenizer.json"
    tokenizer.save(str(path))
    return path


def tiny_config(family: str, vocab_size: int):
    common = dict(vocab_size=vocab_size, seq_len=SEQ_LEN, n_layers=2, d_model=32, n_heads=4, rotary_pct=0.5)
    if family == "tokenformer":
        return TokenformerConfig(**common, qkv_tokens=16, proj_tokens=16, ffn_tokens=64)
    return TransformerConfig(**common, ffn_hidden=64)


@pytest.fixture(scope="session")
def make_model_dir(tmp_path_factory, tokenizer_path):
    """family → a random tiny model directory (with tokenizer.json), made once per family."""
    made = {}

    def make(family: str = "tokenformer"):
        if family not in made:
            from tokenizers import Tokenizer

            vocab = padded_vocab_size(Tokenizer.from_file(str(tokenizer_path)).get_vocab_size())
            torch.manual_seed(0)
            model = build_model(tiny_config(family, vocab))
            out = tmp_path_factory.mktemp("models") / family
            made[family] = save_model_dir(model.state_dict(), model.config, out, tokenizer=tokenizer_path)
        return made[family]

    return make


def example_tasks():
    """examples/tasks/build.py, the builder of the README's example tasks, as a module."""
    spec = importlib.util.spec_from_file_location("example_tasks", REPO / "examples" / "tasks" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def local_tasks(tmp_path_factory):
    """A task directory: the README's example tasks, `shakespeare_mc` (multiple choice: which line comes next)
    and `shakespeare_ppl` (rolling log-likelihood over passages), written by their own builder, smaller (20
    questions, 4 passages: the first of the shipped ones)."""
    return example_tasks().write_tasks(tmp_path_factory.mktemp("tasks"), choices=20, passages=4)


@pytest.fixture
def make_run(make_model_dir):
    """(run dir, {stage: family}, results) → a finished run directory holding those models (no training)."""
    import shutil

    from tfctl.run.state import RESULT_NUMBERS

    def make(run, stages: dict, results: dict | None = None):
        entries = {}
        for stage, family in stages.items():
            shutil.copytree(make_model_dir(family), run / "stages" / stage / "final")
            result = {key: 1 for key in RESULT_NUMBERS} | (results or {}).get(stage, {})
            entries[stage] = {"status": "done", "result": result}
        (run / "state.json").write_text(json.dumps({"name": run.name, "stages": entries}))
        return run

    return make
