"""Shared fixtures: tiny models and a fake Hub behind the HTTP client, never the network."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from hubmodels import RobustClassifier

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
# `accelerate launch` on two CPU processes, no config file needed; append the hubmodels verb.
ACCELERATE_CPU_2 = [
    sys.executable,
    "-m",
    "accelerate.commands.launch",
    "--cpu",
    "--num_processes",
    "2",
    "--num_machines",
    "1",
    "--mixed_precision",
    "no",
    "--dynamo_backend",
    "no",
    "-m",
    "hubmodels",
]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """No test may reach a hub: HF_HUB_OFFLINE makes any accidental download fail fast."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(autouse=True)
def _key_cache(monkeypatch, tmp_path_factory):
    """The shipped bank's key cache goes to the session's temporary folder, never ~/.cache."""
    monkeypatch.setenv("HUBMODELS_CACHE", str(tmp_path_factory.getbasetemp() / "hubmodels-cache"))


def tiny_classifier(seed: int = 0, **overrides) -> RobustClassifier:
    """A small_cnn on 1x8x8 images with 3 classes: fast enough for any unit test."""
    torch.manual_seed(seed)
    config = dict(
        architecture="small_cnn",
        num_classes=3,
        in_channels=1,
        image_size=8,
        class_names=["a", "b", "c"],
        mean=[0.5],
        std=[0.25],
        dataset="toy",
        threat_model={"norm": "linf", "epsilon": 0.1},
        training={"method": "trades"},
    )
    config.update(overrides)
    return RobustClassifier(**config).eval()


@pytest.fixture
def tiny_model() -> RobustClassifier:
    return tiny_classifier()


@dataclass
class FakeHub:
    """Records what the hub client sends: created repos and the files of each commit."""

    created: list[str] = field(default_factory=list)
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    fail_with: int | None = None  # HTTP status to answer every call with, to simulate outages


@pytest.fixture
def fake_hub(monkeypatch):
    """Swap huggingface_hub's HTTP client for one whose transport is an in-memory Hub.

    The interception is at the network boundary: HfApi, create_repo, upload_folder and the model
    card validation all run for real; only the bytes that would go over the wire are caught.
    """
    import base64

    import httpx2
    from huggingface_hub import close_session, set_client_factory

    hub = FakeHub()

    def handle(request: httpx2.Request) -> httpx2.Response:
        url = str(request.url)
        if hub.fail_with is not None:
            return httpx2.Response(hub.fail_with, json={"error": "simulated outage"})
        if url.endswith("/api/repos/create"):
            body = json.loads(request.content)
            repo_id = (
                f"{body['organization']}/{body['name']}"
                if body.get("organization")
                else body["name"]
            )
            hub.created.append(repo_id)
            return httpx2.Response(200, json={"url": f"https://huggingface.co/{repo_id}"})
        if url.endswith("/api/validate-yaml"):
            return httpx2.Response(200, json={})
        if "/preupload/" in url:
            files = json.loads(request.content)["files"]
            modes = [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
            ]
            return httpx2.Response(200, json={"files": modes})
        if "/commit/" in url:
            repo_id = url.split("/api/models/")[1].split("/commit/")[0]
            lines = [json.loads(line) for line in request.content.decode().splitlines()]
            hub.commits[repo_id] = {
                line["value"]["path"]: base64.b64decode(line["value"]["content"])
                for line in lines
                if line["key"] == "file"
            }
            return httpx2.Response(
                200,
                json={
                    "commitUrl": f"https://huggingface.co/{repo_id}/commit/0123abcd",
                    "commitOid": "0123abcd",
                },
            )
        return httpx2.Response(404, json={"error": f"not faked: {request.method} {url}"})

    # The client must be allowed to talk (to the fake); offline mode would stop it earlier.
    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(handle)))
    close_session()
    yield hub
    from huggingface_hub.utils._http import default_client_factory

    set_client_factory(default_client_factory)
    close_session()


TINY_CLIP = "hubmodels-tiny-clip"  # a randomly initialised CLIP small enough for unit tests


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> str:
    """Register a tiny open_clip config (16-d embeddings, 32 px) and return its model name.

    Users name open_clip configs the same way ("ViT-B-32"); only the size differs.
    """
    import open_clip

    folder = tmp_path_factory.mktemp("open_clip_config")
    config = {
        "embed_dim": 16,
        "vision_cfg": {
            "image_size": 32,
            "layers": 2,
            "width": 32,
            "head_width": 16,
            "patch_size": 8,
        },
        "text_cfg": {
            "context_length": 77,
            "vocab_size": 49408,
            "width": 32,
            "heads": 2,
            "layers": 2,
        },
    }
    (folder / f"{TINY_CLIP}.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder)
    return TINY_CLIP


def fresh_app():
    """A fresh import of app.py: unconfigured, no encoder loaded, whatever earlier tests did.

    ``import app`` would hand every test the same module and its loaded encoders.
    """
    spec = importlib.util.spec_from_file_location(
        "app", Path(__file__).resolve().parents[1] / "app.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module  # as an import would: gradio reads its components' source
    spec.loader.exec_module(module)
    return module


def experiment_script(name: str):
    """A script of experiments/ loaded as a module (they are scripts, not a package; each
    imports its sibling grid.py, so that folder is on the path while it loads)."""
    folder = Path(__file__).resolve().parents[1] / "experiments"
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
    return module
