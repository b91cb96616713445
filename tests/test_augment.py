"""Batched augmentations and the augmentation-averaged embedding (docs/methods.md 4.6)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from hubmodels.inversion.augment import AugmentConfig, augment, averaged_embedding
from hubmodels.inversion.encoders import ImageEncoder

IDENTITY = AugmentConfig(
    n=3,
    crop_scale=(1.0, 1.0),
    shear_degrees=0.0,
    scale=(1.0, 1.0),
    brightness=0.0,
    contrast=0.0,
    saturation=0.0,
    noise_std=0.0,
)


class TinyEncoder(ImageEncoder):
    """A linear map of 12x12 RGB images to 5 dimensions, counting its encode_image calls."""

    def __init__(self) -> None:
        super().__init__(
            name="test:tiny", embed_dim=5, input_size=12, mean=(0.5,) * 3, std=(0.25,) * 3
        )
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(3 * 12 * 12, 5)
        self.calls = 0
        self._freeze()

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.linear(x.flatten(1))


def _images(b=2, c=3, h=20, w=24, seed=0) -> torch.Tensor:
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("channels", [1, 3])
def test_shape_range_and_order(channels):
    images = _images(c=channels)
    views = augment(images, AugmentConfig(n=4), size=16, generator=_gen(0))
    assert views.shape == (8, channels, 16, 16)
    assert views.min() >= 0 and views.max() <= 1
    # Row b * n + k is a view of image b: views of image 0 resemble image 0, not image 1.
    small = F.interpolate(images, size=16, mode="bilinear", align_corners=False)
    for b in range(2):
        own = (views[b * 4 : (b + 1) * 4] - small[b]).abs().mean()
        other = (views[b * 4 : (b + 1) * 4] - small[1 - b]).abs().mean()
        assert own < other


def test_seeded():
    images, config = _images(), AugmentConfig(n=4)
    a = augment(images, config, 16, _gen(1))
    assert torch.equal(a, augment(images, config, 16, _gen(1)))
    assert not torch.allclose(a, augment(images, config, 16, _gen(2)))


def test_differentiable():
    images = _images().requires_grad_(True)
    augment(images, AugmentConfig(n=3), 16, _gen(0)).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_identity_config_is_a_resize():
    images = _images()
    views = augment(images, IDENTITY, 16, _gen(0))
    expected = F.interpolate(images, size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.allclose(views, expected.repeat_interleave(3, dim=0), atol=1e-5)


def test_one_grid_sample_per_call(monkeypatch):
    calls = []
    original = F.grid_sample

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "grid_sample", counting)
    augment(_images(b=3), AugmentConfig(n=5), 16, _gen(0))
    assert len(calls) == 1 and calls[0][0] == 15


def test_averaged_embedding_one_encoder_call_unit_norm():
    encoder = TinyEncoder()
    images = _images().requires_grad_(True)
    emb = averaged_embedding(encoder, images, AugmentConfig(n=6), _gen(0))
    assert encoder.calls == 1
    assert emb.shape == (2, 5)
    assert torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-6)
    emb.sum().backward()
    assert images.grad.abs().sum() > 0
    # Without augmentation it is the normalised embedding of the resized image.
    with torch.no_grad():
        plain = F.normalize(encoder.encode_image(images), dim=-1)
        assert torch.allclose(
            averaged_embedding(encoder, images, IDENTITY, _gen(0)), plain, atol=1e-5
        )


@pytest.mark.parametrize(
    "bad",
    [
        dict(n=0),
        dict(n=2.5),
        dict(n=True),
        dict(crop_scale=(0.0, 1.0)),
        dict(crop_scale=(0.8, 0.6)),
        dict(crop_scale=(0.6, 1.2)),
        dict(crop_scale=(0.6,)),
        dict(scale=(0.0, 1.1)),
        dict(shear_degrees=-1.0),
        dict(shear_degrees=90.0),
        dict(brightness=-0.1),
        dict(noise_std=float("nan")),
    ],
)
def test_bad_configs_raise(bad):
    with pytest.raises(ValueError):
        AugmentConfig(**bad)


def test_config_round_trips_through_json():
    config = AugmentConfig(n=4, crop_scale=(0.5, 0.9), noise_std=0.02)
    data = json.loads(json.dumps(config.to_dict()))
    assert data["crop_scale"] == [0.5, 0.9]
    back = AugmentConfig.from_dict(data)
    assert back == config and isinstance(back.crop_scale, tuple)
    assert AugmentConfig.from_dict({}) == AugmentConfig()
    with pytest.raises(ValueError, match="unknown.*cutout"):
        AugmentConfig.from_dict(dict(data, cutout=0.5))


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="B, C, H, W"):
        augment(torch.rand(3, 8, 8), AugmentConfig(n=2), 8, _gen(0))
    with pytest.raises(ValueError, match="size"):
        augment(_images(), AugmentConfig(n=2), 0, _gen(0))
