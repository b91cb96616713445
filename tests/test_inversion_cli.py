"""``python -m hubmodels invert`` and ``build-bank``, in-process and under ``accelerate launch``."""

from __future__ import annotations

import json
import subprocess
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from conftest import ACCELERATE_CPU_2
from hubmodels.__main__ import main
from hubmodels.images import read_png_settings

TINY_FLAGS = ["--resolution", "32", "--lr", "1e-3", "--neighbours", "2"]
BANK_FLAGS = ["--anchor-steps", "3", "--anchor-resolution", "16"]


@pytest.fixture(autouse=True)
def _quiet_random_weights():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*random.*")
        yield


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Four small photos and their JSON-lines captions."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    lines = []
    for i, caption in enumerate(["a red boat", "a cat", "a tree", "a house"]):
        coarse = rng.uniform(0, 255, size=(4, 4, 3)).astype(np.uint8)
        Image.fromarray(coarse).resize((40, 40), Image.BILINEAR).save(folder / f"{i}.png")
        lines.append(json.dumps({"file": f"{i}.png", "caption": caption}))
    (folder / "captions.jsonl").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def tiny_timm(tmp_path_factory):
    """A tiny timm model's weights in a file: every process loads the same encoder."""
    import timm

    torch.manual_seed(0)
    model = timm.create_model("test_efficientnet")
    path = tmp_path_factory.mktemp("timm") / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def test_text_to_image_writes_a_png_with_its_settings(tiny_clip, tmp_path, capsys):
    out = tmp_path / "lighthouse.png"
    code = main(
        ["invert", "text", "a lighthouse at dusk", "--clip", tiny_clip, "--steps", "3"]
        + ["--seed", "4", "--negative", "blurry", "--out", str(out), *TINY_FLAGS]
    )
    assert code == 0 and out.is_file()
    settings = read_png_settings(out)
    assert settings["prompt"] == "a lighthouse at dusk" and settings["seed"] == 4
    assert settings["negative_prompt"] == "blurry" and settings["steps"] == 3
    assert Image.open(out).size == (32, 32)
    assert "final loss" in capsys.readouterr().out


@pytest.mark.parametrize(("bank", "mode"), [([], "bank"), (["--bank", "none"], "plain")])
def test_the_shipped_bank_is_the_default_and_none_is_plain(tiny_clip, tmp_path, bank, mode):
    out = tmp_path / "cat.png"
    command = ["invert", "text", "a cat", "--clip", tiny_clip, "--steps", "1", *bank]
    assert main([*command, "--out", str(out), *TINY_FLAGS]) == 0
    settings = read_png_settings(out)
    assert settings["mode"] == mode
    assert settings["bank"] == ("builtin" if mode == "bank" else None)


def test_build_bank_then_invert_with_it(tiny_clip, photos, tmp_path):
    bank = tmp_path / "bank"
    args = ["build-bank", "--images", str(photos), "--captions", str(photos / "captions.jsonl")]
    assert main([*args, "--clip", tiny_clip, "--out", str(bank), *TINY_FLAGS, *BANK_FLAGS]) == 0
    assert json.loads((bank / "bank.json").read_text())["captions"][0] == "a red boat"
    assert not (bank / "shards").exists()
    out = tmp_path / "boat.png"
    command = ["invert", "text", "a red boat", "--bank", str(bank)]  # its clip, not the default
    assert main([*command, "--steps", "2", "--out", str(out)]) == 0
    assert read_png_settings(out)["mode"] == "bank"


def test_user_errors_end_in_one_line(tiny_clip, tmp_path, capsys):
    assert (
        main(["invert", "text", "  ", "--clip", tiny_clip, "--out", str(tmp_path / "x.png")]) == 2
    )
    assert "empty" in capsys.readouterr().err
    missing = ["invert", "reconstruct", str(tmp_path / "none.png"), "--clip", tiny_clip]
    assert main(missing) == 2
    assert "no image file" in capsys.readouterr().err


@pytest.mark.slow
def test_build_bank_under_accelerate_matches_one_process(tiny_timm, photos, tmp_path):
    common = ["build-bank", "--images", str(photos), "--captions", str(photos / "captions.jsonl")]
    common += ["--clip", "timm:test_efficientnet", "--pretrained", str(tiny_timm)]
    common += [*TINY_FLAGS, *BANK_FLAGS]
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    result = subprocess.run(
        [*ACCELERATE_CPU_2, *common, "--out", str(tmp_path / "two")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    one = load_file(tmp_path / "one" / "bank.safetensors")
    two = load_file(tmp_path / "two" / "bank.safetensors")
    assert one.keys() == two.keys()
    for key in one:
        assert torch.allclose(one[key].float(), two[key].float(), atol=1e-3), key
    captions = json.loads((tmp_path / "two" / "bank.json").read_text())["captions"]
    assert captions == ["a red boat", "a cat", "a tree", "a house"]


def test_random_weights_are_asked_for_by_name_as_in_the_space(tiny_clip, tmp_path):
    """`--pretrained random` is what the Space takes; the CLI takes it too (or no flag)."""
    out = tmp_path / "random.png"
    code = main(
        ["invert", "text", "a boat", "--clip", tiny_clip, "--pretrained", "random"]
        + ["--steps", "2", "--out", str(out), *TINY_FLAGS]
    )
    assert code == 0 and read_png_settings(out)["prompt"] == "a boat"
