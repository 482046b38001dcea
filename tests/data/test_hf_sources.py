"""Hugging Face datasets as sources: `hf:DIR` (save_to_disk), local Parquet/JSON files, the text field, offline."""

import os

import datasets
import pytest

from tfctl.data import DataSettings, load_prepared, prepare_dataset
from tfctl.data.sources import HuggingFaceDataset, resolve_source
from tfctl.errors import DataError

DOCS = [f"Document {i}: " + "the quick brown fox jumps over the lazy dog. " * (i + 3) for i in range(40)]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(os.environ.get("TFCTL_CACHE", "/tmp")) + "/hf-datasets")


@pytest.fixture
def table():
    return datasets.Dataset.from_dict({"body": DOCS, "id": list(range(len(DOCS)))})


def test_hf_dir_saved_to_disk_with_a_text_field(tmp_path, table, cache_root):
    table.save_to_disk(str(tmp_path / "saved"))
    source = resolve_source(f"hf:{tmp_path / 'saved'}", text_field="body")
    assert isinstance(source, HuggingFaceDataset)
    assert source.count() == len(DOCS) and list(source.documents()) == DOCS
    prepared = load_prepared(
        prepare_dataset(
            DataSettings(source=f"hf:{tmp_path / 'saved'}", tokenizer="bpe:300", text_field="body"),
            cache_root=cache_root,
            progress=False,
        )
    )
    assert len(prepared.tokens("train")) > 0 and len(prepared.tokens("val")) > 0
    # a DatasetDict saved to disk: its train split
    datasets.DatasetDict({"train": table, "test": table.select(range(2))}).save_to_disk(
        str(tmp_path / "dict")
    )
    assert resolve_source(f"hf:{tmp_path / 'dict'}", text_field="body").count() == len(DOCS)


@pytest.mark.parametrize("suffix", [".parquet", ".json"])
def test_local_parquet_and_json_files(tmp_path, table, suffix):
    path = tmp_path / f"docs{suffix}"
    table.to_parquet(str(path)) if suffix == ".parquet" else table.to_json(str(path))
    for spec in (str(path), f"hf:{path}"):
        source = resolve_source(spec, text_field="body")
        assert list(source.documents()) == DOCS
        assert source.fingerprint()[0][0] == str(path)


def test_wrong_text_field_names_the_columns(tmp_path, table):
    table.save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(DataError, match=r"no text field 'text' \(columns: body, id; set --text-field\)"):
        resolve_source(f"hf:{tmp_path / 'saved'}").count()


def test_hub_name_without_network_is_one_line(tfctl, tmp_path):
    result = tfctl(
        "data", "prepare", "-s", "hf:someone/not-downloaded", "-t", "bpe:300", "-o", tmp_path / "out",
        env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TFCTL_CACHE": str(tmp_path / "cache")},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(
        "error: hf:someone/not-downloaded: cannot load"
    )
    not_saved = tmp_path / "plain"
    not_saved.mkdir()
    with pytest.raises(DataError, match="cannot load"):
        resolve_source(f"hf:{not_saved}").count()
