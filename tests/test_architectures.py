"""Backbone contract tests: shapes, features/head split, parameter counts, registry errors.

Everything runs on CPU at batch 2. The WideResNet shape sweep uses a WRN-10-1 so it stays fast;
the real WRN-28-10 / WRN-34-10 are built once each for parameter counts and one forward.
"""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from hubmodels.classifiers.architectures import ARCHITECTURES, build_backbone
from hubmodels.classifiers.small_cnn import SmallCNN
from hubmodels.classifiers.wide_resnet import WideResNet

NUM_CLASSES = 10


@functools.cache
def _registry_model(name: str, in_channels: int = 3, image_size: int = 32) -> nn.Module:
    """Build each registry model once per session; eval mode so forwards are deterministic."""
    torch.manual_seed(0)
    return build_backbone(name, NUM_CLASSES, in_channels, image_size).eval()


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _check_contract(model: nn.Module, in_channels: int, image_size: int) -> None:
    model.eval()
    x = torch.rand(2, in_channels, image_size, image_size)
    with torch.no_grad():
        logits = model(x)
        feats = model.features(x)
        via_head = model.head(feats)
    assert logits.shape == (2, NUM_CLASSES)
    assert isinstance(model.feature_dim, int)
    assert feats.shape == (2, model.feature_dim)
    torch.testing.assert_close(logits, via_head)
    assert torch.isfinite(logits).all()


def test_registry_names() -> None:
    assert set(ARCHITECTURES) == {
        "resnet18",
        "preact_resnet18",
        "wrn-28-10",
        "wrn-34-10",
        "small_cnn",
        "small_cnn_wide",
    }


@pytest.mark.parametrize("name", ["resnet18", "preact_resnet18"])
@pytest.mark.parametrize("in_channels,image_size", [(3, 32), (1, 28), (3, 64), (1, 32)])
def test_resnet_family_contract(name: str, in_channels: int, image_size: int) -> None:
    model = build_backbone(name, NUM_CLASSES, in_channels, image_size)
    _check_contract(model, in_channels, image_size)
    assert model.feature_dim == 512


@pytest.mark.parametrize("in_channels,image_size", [(1, 28), (3, 28), (1, 32), (3, 32)])
def test_small_cnn_contract(in_channels: int, image_size: int) -> None:
    model = build_backbone("small_cnn", NUM_CLASSES, in_channels, image_size)
    _check_contract(model, in_channels, image_size)
    assert model.feature_dim == 200


def test_small_cnn_wide_widens_only_the_mlp() -> None:
    wide = build_backbone("small_cnn_wide", NUM_CLASSES, 1, 28)
    _check_contract(wide, 1, 28)
    assert wide.feature_dim == 1024
    small = build_backbone("small_cnn", NUM_CLASSES, 1, 28)
    conv_params = [sum(p.numel() for p in m.body.parameters()) for m in (small, wide)]
    assert conv_params[0] == conv_params[1]


def test_small_cnn_width_multiplies_the_channels() -> None:
    model = SmallCNN(NUM_CLASSES, 1, 28, width=2)
    _check_contract(model, 1, 28)
    assert model.body[-2][0].out_channels == 128


@pytest.mark.parametrize("in_channels,image_size", [(3, 32), (1, 28), (3, 64)])
def test_small_wide_resnet_contract(in_channels: int, image_size: int) -> None:
    # WRN-10-1 has the same code path as WRN-28-10 (one block per group instead of four).
    model = WideResNet(NUM_CLASSES, in_channels, image_size, depth=10, widen_factor=1)
    _check_contract(model, in_channels, image_size)
    assert model.feature_dim == 64


def test_wrn_28_10_forward() -> None:
    model = _registry_model("wrn-28-10", 3, 32)
    _check_contract(model, 3, 32)
    assert model.feature_dim == 640


@pytest.mark.parametrize(
    "name,in_channels,image_size,expected",
    [
        ("resnet18", 3, 32, 11.17e6),
        ("preact_resnet18", 3, 32, 11.17e6),
        ("wrn-28-10", 3, 32, 36.48e6),
        ("wrn-34-10", 3, 32, 46.16e6),
    ],
)
def test_parameter_counts(name: str, in_channels: int, image_size: int, expected: float) -> None:
    n = _n_params(_registry_model(name, in_channels, image_size))
    assert abs(n - expected) / expected < 0.01, f"{name}: {n} parameters"


@pytest.mark.parametrize("image_size", [28, 32])
def test_small_cnn_is_small(image_size: int) -> None:
    assert _n_params(build_backbone("small_cnn", NUM_CLASSES, 1, image_size)) < 1_000_000


def test_unknown_architecture_names_known_ones() -> None:
    with pytest.raises(ValueError) as info:
        build_backbone("vgg16", NUM_CLASSES, 3, 32)
    message = str(info.value)
    assert "vgg16" in message
    for name in ARCHITECTURES:
        assert name in message


def test_invalid_shapes_raise() -> None:
    with pytest.raises(ValueError):
        WideResNet(depth=27)
    with pytest.raises(ValueError):
        SmallCNN(image_size=30)


def test_eval_forward_is_deterministic() -> None:
    # Attacks and samplers differentiate the eval-mode forward; it must not be stochastic.
    torch.manual_seed(0)
    model = SmallCNN(NUM_CLASSES, 1, 28).eval()
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)


def test_small_cnn_overfits_tiny_batch() -> None:
    torch.manual_seed(0)
    model = SmallCNN(NUM_CLASSES, 1, 28)
    x = torch.rand(16, 1, 28, 28)
    y = torch.randint(0, NUM_CLASSES, (16,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(10):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
