"""The bad-input table of test_user_errors.py: its inputs, and a runner that works through it in background
threads (started by tests/conftest.py with the session, so it overlaps the other tests)."""

import json
import os
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from tests.reliability.conftest import ENV, RECIPE
from tests.tfctl_processes import run_tfctl_process
from tfctl.run.lock import RunLock

CASES = [
    ("train", "missing.yaml"),
    ("train", "empty"),
    ("train", "garbage.yaml"),
    ("train", "list.yaml"),
    ("train", "good.yaml", "-o", "run_badstate"),
    ("train", "good.yaml", "-o", "afile"),
    ("train", "good.yaml", "-o", "busy"),
    ("plan", "missing.yaml"),
    ("plan", "garbage.yaml"),
    ("grow", "missing", "--to", "2m"),
    ("grow", "empty", "--to", "2m"),
    ("grow", "model_badconfig", "--to", "2m"),
    ("grow", "model_truncated", "--to", "2m", "-o", "grown"),
    ("grow", "run_badstate", "--to", "2m"),
    ("compare", "missing"),
    ("compare", "empty"),
    ("compare", "model_truncated"),
    ("compare", "run_badstate"),
    ("eval", "missing"),
    ("eval", "empty"),
    ("eval", "model_badconfig"),
    ("eval", "model_truncated"),
    ("eval", "run_badstate"),
    ("generate", "model_truncated", "-p", "hi"),
    ("generate", "run_badstate", "-p", "hi"),
    ("data", "prepare", "-s", "missing.txt", "-o", "out"),
    ("data", "prepare", "-s", "bad.jsonl", "-o", "out"),
    ("data", "prepare", "-s", "empty", "-o", "out"),
    ("data", "info", "missing"),
    ("data", "info", "empty"),
    ("data", "info", "data_badmeta"),
    # issue 15: values that used to pass validation or end in a traceback
    ("plan", "good.yaml", "--set", "stages.0.tokens=.inf"),
    ("plan", "good.yaml", "--set", "name=[unclosed"),
    ("plan", "good.yaml", "--set", "name=!!python/object/apply:os.system [echo]"),
    ("plan", "good.yaml", "--set", "name=.."),
    ("train", "good.yaml", "--set", "train.lr=.inf"),
    ("train", "good.yaml", "--set", "stages.0.tokens=1e24b"),
    ("train", "good.yaml", "--set", "stages.0.tokens=1.0e+30"),
    ("train", "good.yaml", "--set", f"seed={2**70}"),
    ("plan", "latin1.yaml"),
    ("plan", "seed_negative.yaml"),
    ("plan", "minimal.yaml"),
    ("plan", "laughs.yaml"),
    ("train", "laughs.yaml"),
    ("grow", "model_ok", "--to", "2m", "--layers", "0"),
    ("grow", "model_nan", "--to", "2m"),
    ("eval", "model_nan"),
    ("generate", "model_nan", "-p", "hi"),
    ("generate", "model_ok", "-p", "hi", "--seed", str(2**70)),
    ("generate", "model_ok", "-p", "hi", "-n", "100000"),
    ("eval", "model_badexport"),
    ("eval", "run_state_string"),
    ("generate", "run_state_null", "-p", "hi"),
    ("compare", "run_state_noresult"),
    ("grow", "run_state_string", "--to", "2m"),
    ("train", "good.yaml", "-o", "run_state_traversal", "--force", "s2"),
    ("train", "good.yaml", "-o", "run_state_absolute", "--force", "s2"),
    ("data", "info", "data_latin1meta"),
    # issue 24: an output path never destroys what is there, never follows a link, is never inside a run
    ("export", "model_tok", "--hf", "userdir"),
    ("export", "model_tok", "--hf", "userdir", "--force"),  # its config.json is the user's: not replaced
    ("export", "model_tok", "--hf", "model_ok"),  # a model directory is not an HF export
    ("export", "model_tok", "--hf", "model_tok"),  # the source itself
    ("export", "model_tok", "--hf", "run_final/stages/s2/final"),
    ("export", "model_tok", "--hf", "run_final"),
    ("export", "model_tok", "--hf", "afile"),
    ("export", "model_tok", "--hf", "linkdir"),
    ("export", "model_tok_truncated", "--hf", "hf"),
    ("export", "model_tok_nan", "--hf", "hf"),
    ("export", "model_tok_badtok", "--hf", "hf"),
    ("import", "ck.pt", "-o", "run_final"),
    ("import", "ck.pt", "-o", "userdir"),
    ("import", "ck.pt", "-o", "afile"),
    ("import", "ck.pt", "-o", "linkdir"),
    ("import", "model_ok/model.safetensors", "-o", "model_ok"),  # the checkpoint's own folder
    ("import", "fifo", "-o", "imported"),
    ("import", "ck_1d.pt", "-o", "imported"),
    ("import", "ck_stride0.pt", "-o", "imported"),
    ("import", "ck_latin1", "-o", "imported"),
    ("import", "ck_nan.pt", "-o", "imported", "--heads", "2"),
    ("import", "ck_zero.pt", "-o", "imported", "--heads", "2"),
    ("import", "ck_pickle.pt", "-o", "imported"),  # a plain pickle carrying code: one line, no torch warning
    ("grow", "model_ok", "--to", "2m", "-o", "userdir"),
    ("grow", "model_ok", "--to", "2m", "-o", "linkdir"),
    ("grow", "model_ok", "--to", "2m", "-o", "run_final/stages/s2/grown"),  # new, but inside a run
    ("grow", "model_ok", "--to", "1t", "-o", "grown"),
    ("grow", "model_ok", "--to", "2m", "--layers", "1", "-o", "grown"),
    ("grow", "model_ok", "--to", "1m", "--layers", "100000", "-o", "grown"),
    ("grow", "model_zero", "--to", "2m", "-o", "grown"),
    ("train", "good.yaml", "-o", "userdir"),
    ("train", "good.yaml", "-o", "run_lockdir"),
    ("train", "good.yaml", "-o", "run_lockfifo"),
    ("train", "good.yaml", "-o", "run_statedir"),
    ("train", "good.yaml", "-o", "run_locklink"),
    ("train", "from_missing.yaml"),
    ("train", "from_afile.yaml"),
    ("train", "from_userdir.yaml"),
    ("train", "from_run.yaml"),
    ("train", "from_nan.yaml"),
    ("data", "prepare", "-s", "text_object.jsonl", "-o", "out"),
    ("data", "prepare", "-s", "text_null.jsonl", "-o", "out"),
    ("data", "prepare", "-s", "hf:hf_ints", "-o", "out"),
    ("eval", "model_tok", "--tasks", "mytask", "--include-path", "tasks_bad"),  # not "unknown task"
]

STATES = {  # state.json of the wrong shape: each refused in one line wherever it is read
    "run_state_string": {"stages": {"s1": "done"}},
    "run_state_null": {"stages": {"s1": None}},
    "run_state_noresult": {"stages": {"s1": {"status": "done"}}},
    "run_state_traversal": {"stages": {"s1": {"status": "pending"}, "../../victim": {"status": "done"}}},
    "run_state_absolute": {"stages": {"/tmp/victim-of-tfctl": {"status": "failed"}}},
}


def make_inputs(root: Path) -> None:
    from tfctl.model import build_model, config_from_dict
    from tfctl.model_dir.weights import save_model_dir

    (root / "empty").mkdir()
    (root / "garbage.yaml").write_text("name: [unclosed")
    (root / "list.yaml").write_text("- 1\n- 2\n")
    (root / "good.yaml").write_text(yaml.safe_dump(RECIPE))
    (root / "afile").write_text("a file where a directory is expected\n")
    (root / "bad.jsonl").write_text('{"text": "fine"}\n{"text": 1\n')
    config = config_from_dict(
        dict(
            family="tokenformer",
            vocab_size=512,
            seq_len=32,
            n_layers=2,
            d_model=32,
            n_heads=2,
            qkv_tokens=16,
            proj_tokens=16,
            ffn_tokens=64,
        )
    )
    model = save_model_dir(build_model(config).state_dict(), config, root / "model_truncated")
    weights = (model / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    (root / "model_badconfig").mkdir()
    (root / "model_badconfig" / "config.json").write_text("{garbage")
    (root / "model_badconfig" / "model.safetensors").write_bytes(weights)
    (root / "run_badstate").mkdir()
    (root / "run_badstate" / "state.json").write_text("this is not JSON")
    (root / "run_badstate" / "recipe.yaml").write_text(yaml.safe_dump(RECIPE))
    (root / "data_badmeta").mkdir()
    (root / "data_badmeta" / "meta.json").write_text("[1, 2")
    (root / "busy").mkdir()
    (root / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (root / "seed_negative.yaml").write_text(yaml.safe_dump({**RECIPE, "seed": -1}))
    (root / "minimal.yaml").write_text("name: minimal\nstages:\n  - {name: s1, param_tokens: 16, steps: 2}\n")
    laughs = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for previous, name in zip("abcdef", "bcdefg", strict=True):
        laughs += f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    (root / "laughs.yaml").write_text(laughs + "name: *g\n")  # ~700 bytes, 9^7 values expanded
    save_model_dir(build_model(config).state_dict(), config, root / "model_ok")
    nan = build_model(config).state_dict()
    nan["embedding.weight"][0, 0] = float("nan")
    save_model_dir(nan, config, root / "model_nan")
    save_model_dir(build_model(config).state_dict(), config, root / "model_badexport")
    (root / "model_badexport" / "export.json").write_text('["not", "an", "object"]')
    for name, state in STATES.items():
        (root / name).mkdir()
        (root / name / "state.json").write_text(json.dumps(state))
        (root / name / "recipe.yaml").write_text(yaml.safe_dump(RECIPE))
    (root / "victim" / "stages").mkdir(parents=True)  # what ../../victim would reach from run/stages/
    (root / "victim" / "important.txt").write_text("keep me\n")
    (root / "data_latin1meta").mkdir()
    (root / "data_latin1meta" / "meta.json").write_bytes(b'{"dtype": "\xff"}')
    make_output_inputs(root, config, build_model(config))


class CarriesCode:
    def __reduce__(self):
        return (print, ("this ran",))


def official_checkpoint(config) -> dict:
    """A random state dict in the official TokenFormer layout (tfctl/interop/official.py) for `config`."""
    import torch

    d = config.d_model
    state = {"sequential.0.word_embeddings.weight": torch.randn(config.vocab_size, d)}
    for i in range(2, config.n_layers + 2):
        for name, n in (("query", 16), ("key", 16), ("value", 16), ("proj", 16)):
            for kind in ("key", "value"):
                state[f"sequential.{i}.attention.{name}.{kind}_param_tokens"] = torch.randn(n, d)
        for kind in ("key", "value"):
            state[f"sequential.{i}.mlp.{kind}_param_tokens"] = torch.randn(64, d)
    state[f"sequential.{config.n_layers + 3}.norm.weight"] = torch.ones(d)
    state[f"sequential.{config.n_layers + 3}.norm.bias"] = torch.zeros(d)
    return state


def make_output_inputs(root: Path, config, model) -> None:
    """Issue 24's inputs: a user's folder, links, a run holding a stage export, checkpoints that crash
    naive readers, run files of the wrong kind, recipes whose `from:` is wrong, data of the wrong type."""
    import datasets
    import torch
    from tokenizers import Tokenizer, models

    from tfctl.data.tokenizer import EOS
    from tfctl.model_dir.weights import save_model_dir

    (root / "userdir" / "sub").mkdir(parents=True)
    (root / "userdir" / "config.json").write_text('{"mine": true}\n')
    (root / "userdir" / "precious.txt").write_text("keep me\n")
    (root / "linkdir").symlink_to(root / "victim", target_is_directory=True)
    tokenizer = root / "tokenizer.json"
    Tokenizer(models.WordLevel({EOS: 0, "a": 1, "b": 2}, unk_token=EOS)).save(str(tokenizer))
    save_model_dir(model.state_dict(), config, root / "model_tok", tokenizer=tokenizer)
    weights = (root / "model_tok" / "model.safetensors").read_bytes()
    save_model_dir(model.state_dict(), config, root / "model_tok_truncated", tokenizer=tokenizer)
    (root / "model_tok_truncated" / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    nan = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    nan["embedding.weight"][1, 1] = float("nan")
    save_model_dir(nan, config, root / "model_tok_nan", tokenizer=tokenizer)
    save_model_dir(model.state_dict(), config, root / "model_tok_badtok", tokenizer=tokenizer)
    (root / "model_tok_badtok" / "tokenizer.json").write_text('{"model": 12')
    (root / "run_final" / "stages" / "s2").mkdir(parents=True)
    (root / "run_final" / "state.json").write_text('{"stages": {}}')
    (root / "run_final" / "recipe.yaml").write_text(yaml.safe_dump(RECIPE))
    save_model_dir(model.state_dict(), config, root / "run_final" / "stages" / "s2" / "final")
    state = official_checkpoint(config)
    torch.save(state, root / "ck.pt")
    torch.save({**state, "sequential.0.word_embeddings.weight": torch.randn(64)}, root / "ck_1d.pt")
    torch.save(
        {"sequential.0.word_embeddings.weight": torch.zeros(1, 1).expand(2_000_000_000, 64)},
        root / "ck_stride0.pt",
    )
    (root / "ck_latin1").mkdir()
    (root / "ck_latin1" / "latest").write_bytes(b"global_step\xff")
    torch.save(
        {**state, "sequential.2.mlp.key_param_tokens": torch.full((64, config.d_model), float("nan"))},
        root / "ck_nan.pt",
    )
    zero = {
        k: (v[:0] if "attention.query" in k or "attention.key" in k or "attention.value" in k else v)
        for k, v in state.items()
    }
    torch.save(zero, root / "ck_zero.pt")
    os.mkfifo(root / "fifo")
    (root / "ck_pickle.pt").write_bytes(pickle.dumps({"a": CarriesCode()}, protocol=4))
    (root / "model_zero").mkdir()
    (root / "model_zero" / "model.safetensors").write_bytes(weights)
    (root / "model_zero" / "config.json").write_text(
        json.dumps({**json.loads((root / "model_tok" / "config.json").read_text()), "qkv_tokens": 0})
    )
    for name, make in (
        ("run_lockdir", lambda p: p.mkdir()),
        ("run_lockfifo", os.mkfifo),
        ("run_statedir", lambda p: p.mkdir()),
    ):
        (root / name).mkdir()
        make(root / name / (".lock" if "lock" in name else "state.json"))
    (root / "run_locklink").mkdir()
    (root / "victim_lock").write_text("keep me\n")
    (root / "run_locklink" / ".lock").symlink_to(root / "victim_lock")
    for name, start in (
        ("missing", root / "missing-model"),
        ("afile", root / "afile"),
        ("userdir", root / "userdir"),
        ("run", root / "run_final"),
        ("nan", root / "model_nan"),
    ):
        recipe = {
            **RECIPE,
            "name": f"from-{name}",
            "stages": [{**RECIPE["stages"][0], "from": str(start)}, *RECIPE["stages"][1:]],
        }
        (root / f"from_{name}.yaml").write_text(yaml.safe_dump(recipe))
    (root / "text_object.jsonl").write_text('{"text": "fine"}\n{"text": {"nested": 1}}\n')
    (root / "text_null.jsonl").write_text('{"text": "fine"}\n{"text": null}\n')
    datasets.Dataset.from_dict({"text": [1, 2, 3]}).save_to_disk(str(root / "hf_ints"))
    (root / "tasks_bad").mkdir()
    (root / "tasks_bad" / "mytask.yaml").write_text("task: mytask\ndataset_path: [unclosed\n")


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")}


class Table:
    """Runs every case in the background while the test session goes on, `jobs` processes at a time."""

    def __init__(self, root: Path, jobs: int = 1):
        self.root, self.jobs, self.results, self.done = root, jobs, {}, threading.Event()
        make_inputs(root)
        self.lock = RunLock(root / "busy" / ".lock").__enter__()  # a run directory in use by someone else
        self.before = snapshot(root)
        threading.Thread(target=self.run, daemon=True).start()

    def cwd(self, case: tuple) -> Path:
        return self.root / "cwd" / "-".join(case).replace("/", "_")

    def argument(self, a: str) -> str:
        """A name of the table's inputs (or one to be refused, `missing*`, under `run_final`) as an absolute path."""
        if a.startswith("hf:"):
            return "hf:" + self.argument(a[3:])
        return str(self.root / a) if (self.root / a).exists() or a.startswith(("missing", "run_final")) else a

    def run_case(self, case: tuple) -> None:
        cwd = self.cwd(case)
        cwd.mkdir(parents=True)
        args = [self.argument(a) for a in case]
        self.results[case] = run_tfctl_process(args, cwd=cwd, env={**os.environ, **ENV}, timeout=300)

    def run(self) -> None:
        try:
            with ThreadPoolExecutor(self.jobs) as pool:
                list(pool.map(self.run_case, CASES))  # list(): a case that raised fails the whole table
            self.after = snapshot(self.root)
        finally:
            self.lock.__exit__()
            self.done.set()
