"""Tokenizing in worker processes writes the same bytes as one process."""

import json

import pytest

from tfctl.data import prepare_dataset


@pytest.mark.parametrize("workers", [2, 3])
def test_token_files_are_the_same_bytes_whatever_the_worker_count(
    workers, shakespeare, shakespeare_settings, cache_root, tmp_path
):
    one = prepare_dataset(
        shakespeare_settings, tmp_path / "one", cache_root=cache_root, progress=False, workers=1
    )
    many = prepare_dataset(
        shakespeare_settings, tmp_path / "many", cache_root=cache_root, progress=False, workers=workers
    )
    for name in ("train.bin", "val.bin", "tokenizer.json"):
        assert (many / name).read_bytes() == (one / name).read_bytes(), name
        assert (many / name).read_bytes() == (shakespeare.path / name).read_bytes(), name  # the default path
    splits = [json.loads((path / "meta.json").read_text())["splits"] for path in (one, many)]
    assert splits[0] == splits[1]
