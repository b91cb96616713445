"""Metrics that tell generation from retrieval, on cases whose answer is known."""

import pytest
import torch

from hubmodels.metrics import copy_report, distribution_report, nearest_neighbours
from hubmodels.metrics.memorisation import mann_whitney_z


def _cloud(n, seed, dim=16, shift=0.0):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)) + shift


def test_nearest_neighbours_finds_the_exact_row_and_works_in_blocks():
    refs = _cloud(300, 0)
    queries = refs[[5, 17, 299]] + 1e-4
    distance, index = nearest_neighbours(queries, refs, block=2)
    assert index.tolist() == [5, 17, 299] and distance.max() < 1e-2
    images = refs.view(300, 1, 4, 4)  # images are flattened
    assert nearest_neighbours(images[:3], images)[1].tolist() == [0, 1, 2]


def test_fresh_real_data_scores_like_real_data():
    train, heldout, fresh = _cloud(3000, 0), _cloud(1000, 1), _cloud(1000, 2)
    report = copy_report(fresh, train, heldout)
    assert report["copy_ratio"] == pytest.approx(1.0, abs=0.05)
    assert report["closer_than_real"] == pytest.approx(0.05, abs=0.03)
    assert abs(report["z_u"]) < 3
    assert report["distinct_nn"] == pytest.approx(report["distinct_nn_ref"], abs=0.05)


def test_copies_of_the_training_set_score_near_zero():
    train, heldout = _cloud(3000, 0), _cloud(1000, 1)
    noise = 0.01 * _cloud(1000, 3)
    copies = train[:1000] + noise
    report = copy_report(copies, train, heldout)
    assert report["copy_ratio"] < 0.05
    assert report["closer_than_real"] == 1.0
    assert report["z_u"] < -20


def test_perturbing_a_few_stored_images_shows_in_the_distinct_share():
    train, heldout = _cloud(3000, 0), _cloud(1000, 1)
    labels = torch.arange(1000) % 2
    few = train[torch.arange(1000) % 12] + 0.05 * _cloud(1000, 4)  # 12 images, many times
    report = copy_report(few, train, heldout, labels, torch.arange(1000) % 2)
    assert report["distinct_nn"] <= 12 / 500 + 1e-9
    assert report["distinct_nn_ref"] > 0.5


def test_copy_report_refuses_mismatched_input():
    with pytest.raises(ValueError, match="labels for both"):
        copy_report(_cloud(10, 0), _cloud(20, 1), _cloud(10, 2), torch.zeros(10))
    with pytest.raises(ValueError, match="dimensions"):
        copy_report(_cloud(10, 0, dim=3), _cloud(20, 1), _cloud(10, 2))
    bad = _cloud(10, 0)
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        copy_report(bad, _cloud(20, 1), _cloud(10, 2))


def test_mann_whitney_z_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    a, b = _cloud(200, 0, dim=1).flatten(), _cloud(300, 1, dim=1, shift=0.3).flatten()
    a[:20] = b[:20]  # ties
    result = stats.mannwhitneyu(a.numpy(), b.numpy(), method="asymptotic", use_continuity=False)
    u = result.statistic
    expected = (u - 200 * 300 / 2) / (200 * 300 * 501 / 12) ** 0.5
    # scipy corrects the variance for ties; with 20 ties in 500 the difference is tiny.
    assert mann_whitney_z(a, b) == pytest.approx(expected, rel=1e-2)
    assert mann_whitney_z(a, b) < -2  # a tends to be smaller


def test_distribution_report_a_set_against_itself_and_two_real_sets():
    real = _cloud(1200, 0)
    same = distribution_report(real, real, kid_subset_size=500, kid_subsets=10)
    assert same["fid"] < 1e-6
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and same["coverage"] == 1.0
    assert same["mean_nearest_cosine"] < 1e-9
    other = distribution_report(real, _cloud(1200, 1), kid_subset_size=500, kid_subsets=10)
    assert other["fid"] < 0.5 and abs(other["kid_mean"]) < 0.01
    assert other["precision"] > 0.6 and other["recall"] > 0.6
    assert other["density"] == pytest.approx(1.0, abs=0.2)
    assert other["coverage"] > 0.9


def test_distribution_report_sees_a_shifted_set_and_memorisation():
    real = _cloud(1200, 0)
    far = distribution_report(real, _cloud(1200, 1, shift=3.0), kid_subsets=10)
    assert far["fid"] > 100 and far["precision"] < 0.05 and far["coverage"] < 0.05
    # Copies of a third of the training set: FID looks fine, MiFID does not.
    copies = real[:400].repeat(3, 1)
    memorised = distribution_report(real, copies, kid_subsets=10, kid_subset_size=400)
    assert memorised["mean_nearest_cosine"] < 1e-9
    assert memorised["mifid"] > 1000 * memorised["fid"]


def test_distribution_report_names_bad_input():
    with pytest.raises(ValueError, match="feature dimensions differ"):
        distribution_report(_cloud(20, 0, dim=4), _cloud(20, 1, dim=5))
    with pytest.raises(ValueError, match=r"expected features \(N >= 2, D\)"):
        distribution_report(_cloud(20, 0), torch.randn(1, 16))
