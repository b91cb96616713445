"""An unreachable Hub fails every load within seconds, once, in one sentence.

The autouse fixture puts every test in offline mode; these tests switch it off and point the
Hub endpoint at a closed local port, which is what a machine without network looks like to the
client, minus the wait a dropped packet would add (the probe's timeout bounds that).
"""

from __future__ import annotations

import time

import huggingface_hub.constants
import pytest

from hubmodels import CheckpointError, CLIPInverter, RobustClassifier, hub

CLOSED_PORT = "http://127.0.0.1:9"


@pytest.fixture
def no_network(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", CLOSED_PORT)
    monkeypatch.setattr(hub, "_probed", {})
    probes = []
    real_session = hub.get_session
    monkeypatch.setattr(hub, "get_session", lambda: probes.append(1) or real_session())
    return probes


def test_a_hub_id_fails_in_seconds_and_the_hub_is_probed_once(no_network, tmp_path):
    for repo in ("org/first", "org/second"):
        started = time.perf_counter()
        with pytest.raises(CheckpointError, match="Hugging Face Hub cannot be reached"):
            RobustClassifier.from_pretrained(repo, cache_dir=tmp_path)
        assert time.perf_counter() - started < 10
    assert len(no_network) == 1  # the second load reused the first verdict


def test_an_uncached_clip_tag_fails_in_seconds(no_network):
    started = time.perf_counter()
    with pytest.raises(CheckpointError, match="openai weights of ViT-B-32 are not in the local"):
        CLIPInverter("ViT-B-32", "openai", resolution=32)
    assert time.perf_counter() - started < 10


def test_offline_mode_needs_no_probe(monkeypatch, tmp_path):
    monkeypatch.setattr(hub, "_probed", {})
    with pytest.raises(CheckpointError, match="HF_HUB_OFFLINE is set"):
        RobustClassifier.from_pretrained("org/model", cache_dir=tmp_path)
    assert hub._probed == {}


def test_a_cached_checkpoint_loads_without_any_network(no_network, tmp_path, tiny_model):
    """The cache is tried before the Hub: an unreachable Hub does not block what is on disk."""
    from huggingface_hub.file_download import repo_folder_name

    snapshot = tmp_path / repo_folder_name(repo_id="org/cached", repo_type="model")
    commit = "0" * 40
    folder = snapshot / "snapshots" / commit
    tiny_model.save_pretrained(folder)
    (snapshot / "refs").mkdir()
    (snapshot / "refs" / "main").write_text(commit)
    loaded = RobustClassifier.from_pretrained("org/cached", cache_dir=tmp_path)
    assert loaded.config["num_classes"] == tiny_model.config["num_classes"]
    assert no_network == []


def test_an_inverter_hub_id_fails_in_seconds_too(no_network, tmp_path):
    started = time.perf_counter()
    with pytest.raises(CheckpointError, match="Hugging Face Hub cannot be reached"):
        CLIPInverter.from_pretrained("org/inverter", cache_dir=tmp_path)
    assert time.perf_counter() - started < 10
