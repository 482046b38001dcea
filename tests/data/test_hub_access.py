"""Before a hub dataset or task loads, tfctl decides once whether the Hub is reachable: offline (set, or no
connection), the Hugging Face libraries go straight to their caches instead of retrying for half a minute."""

import os
import socket

import datasets.config
import huggingface_hub.constants
import pytest

from tfctl.hub_access import OFFLINE_VARIABLES, hub_offline


@pytest.fixture
def online_settings(monkeypatch):
    """No offline variable set; whatever hub_offline sets is undone after the test."""
    for name in OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for module in (huggingface_hub.constants, datasets.config):
        for name in OFFLINE_VARIABLES:
            monkeypatch.setattr(module, name, False, raising=False)
    return monkeypatch


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once closed


def test_an_unreachable_hub_means_offline_for_the_libraries_too(online_settings):
    online_settings.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    assert hub_offline()
    assert all(os.environ[name] == "1" for name in OFFLINE_VARIABLES)
    assert huggingface_hub.constants.HF_HUB_OFFLINE and datasets.config.HF_HUB_OFFLINE


def test_a_reachable_hub_is_left_alone(online_settings):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        online_settings.setattr(
            huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}"
        )
        assert not hub_offline()
    assert not any(os.environ.get(name) for name in OFFLINE_VARIABLES)
    assert not huggingface_hub.constants.HF_HUB_OFFLINE


def test_set_offline_is_offline_without_asking(online_settings):
    online_settings.setenv("HF_HUB_OFFLINE", "1")
    online_settings.setattr(huggingface_hub.constants, "ENDPOINT", "http://192.0.2.1:9")  # never contacted
    assert hub_offline() and os.environ["HF_DATASETS_OFFLINE"] == "1"


def test_a_hub_dataset_with_the_hub_unreachable_is_one_line(tfctl, tmp_path):
    environment = {name: "" for name in OFFLINE_VARIABLES}
    environment.update(HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}", TFCTL_CACHE=str(tmp_path / "cache"))
    result = tfctl(
        "data",
        "prepare",
        "-s",
        "hf:someone/not-downloaded",
        "-t",
        "bpe:300",
        "-o",
        tmp_path / "o",
        env=environment,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(
        "error: hf:someone/not-downloaded: cannot load"
    )
