"""CLIP score, and the text-to-image evaluation script that users with CLIP weights run."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import tiny_classifier
from hubmodels.inversion.encoders import OpenCLIPEncoder, RandomWeightsWarning
from hubmodels.metrics import classifier_extractor, clip_score

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def judge(tiny_clip):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        return OpenCLIPEncoder(tiny_clip)


def test_clip_score_is_100_times_the_clipped_cosine(judge):
    images = torch.rand(3, 3, 24, 24)
    prompts = ["a cat", "a dog", "a boat"]
    result = clip_score(images, prompts, judge)
    with torch.no_grad():
        a = torch.nn.functional.normalize(judge.encode_image(images), dim=-1)
        b = torch.nn.functional.normalize(judge.encode_text(prompts), dim=-1)
    expected = (100 * (a * b).sum(-1).clamp(min=0)).tolist()
    assert np.allclose(result["per_pair"], expected, atol=1e-4)
    assert result["clip_score"] == pytest.approx(float(np.mean(expected)), abs=1e-4)
    assert result["encoder"] == judge.name and result["n"] == 3


def test_clip_score_refuses_mismatched_input(judge):
    with pytest.raises(ValueError, match="one prompt per image"):
        clip_score(torch.rand(2, 3, 8, 8), ["a cat"], judge)


def test_text_to_image_eval_script_runs_end_to_end(tiny_clip, judge, tmp_path):
    spec = importlib.util.spec_from_file_location(
        "text_to_image_eval", ROOT / "experiments" / "text_to_image_eval.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rng = np.random.default_rng(0)
    lines = []
    for i, caption in enumerate(["a red boat", "a cat", "a tree", "a house"]):
        pixels = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{i}.jpg")
        lines.append(json.dumps({"file": f"{i}.jpg", "caption": caption}))
    (tmp_path / "captions.jsonl").write_text("\n".join(lines))
    argv = ["--captions", str(tmp_path / "captions.jsonl"), "--images", str(tmp_path)]
    argv += ["--clip", tiny_clip, "--pretrained", "random", "--judge-clip", tiny_clip]
    argv += ["--judge-pretrained", "random", "--steps", "2", "--resolution", "32", "--n", "3"]
    argv += ["--out", str(tmp_path / "out")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        report = script.main(argv, extractor=classifier_extractor(tiny_classifier()))
    assert report["n"] == 3 and np.isfinite(report["fid"]) and report["fid"] >= 0
    assert 0 <= report["clip_score"] <= 100
    assert len(list((tmp_path / "out").glob("*.png"))) == 3
    assert json.loads((tmp_path / "out" / "results.json").read_text())["steps"] == 2
