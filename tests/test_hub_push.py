"""Pushing to the Hub, checked at the HTTP boundary with an in-memory Hub (conftest.fake_hub)."""

import json

import pytest
from safetensors.torch import load

from hubmodels import HubPushError, RobustClassifier
from hubmodels.__main__ import main
from hubmodels.hub import push_folder


def test_push_to_hub_sends_the_three_files_to_the_named_repo(tiny_model, fake_hub):
    tiny_model.push_to_hub("org/tiny-robust")
    assert fake_hub.created == ["org/tiny-robust"]
    files = fake_hub.commits["org/tiny-robust"]
    assert sorted(files) == ["README.md", "config.json", "model.safetensors"]
    assert json.loads(files["config.json"]) == tiny_model.config
    weights = load(files["model.safetensors"])
    assert all((weights[k] == v).all() for k, v in tiny_model.state_dict().items())
    assert "library_name: hubmodels" in files["README.md"].decode()


def test_push_folder_uploads_the_folder_as_saved(tiny_model, fake_hub, tmp_path):
    tiny_model.save_pretrained(tmp_path / "ckpt")
    url = push_folder(tmp_path / "ckpt", "org/from-folder")
    assert url.endswith("/commit/0123abcd")
    sent = fake_hub.commits["org/from-folder"]
    for name, content in sent.items():
        assert content == (tmp_path / "ckpt" / name).read_bytes()


def test_cli_push_uploads_and_refuses_a_broken_folder(tiny_model, fake_hub, tmp_path, capsys):
    tiny_model.save_pretrained(tmp_path / "ckpt")
    assert main(["push", str(tmp_path / "ckpt"), "org/cli"]) == 0
    assert "org/cli" in fake_hub.commits
    (tmp_path / "ckpt" / "model.safetensors").write_bytes(b"garbage")
    assert main(["push", str(tmp_path / "ckpt"), "org/broken"]) == 2
    assert "not a readable safetensors file" in capsys.readouterr().err
    assert "org/broken" not in fake_hub.commits


def test_a_failed_push_keeps_the_local_save_and_says_why(tiny_model, fake_hub, tmp_path):
    tiny_model.save_pretrained(tmp_path / "ckpt")
    before = {p.name: p.read_bytes() for p in (tmp_path / "ckpt").iterdir()}
    fake_hub.fail_with = 401
    with pytest.raises(HubPushError, match="local files in .* are unchanged") as info:
        push_folder(tmp_path / "ckpt", "org/denied")
    assert "401" in str(info.value)
    assert {p.name: p.read_bytes() for p in (tmp_path / "ckpt").iterdir()} == before
    RobustClassifier.from_pretrained(tmp_path / "ckpt")  # still loads
