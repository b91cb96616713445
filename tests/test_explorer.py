"""The energy explorer's package calls: the stored energy reference, energy reports, traced
attacks, upload conversion and the OOD metrics, on known cases and on the embedded presets."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from PIL import Image

from conftest import tiny_classifier
from hubmodels import RobustClassifier, attacks
from hubmodels.explorer import (
    EnergyReference,
    ReferenceShape,
    attack_trace,
    energy_report,
    to_model_input,
)
from hubmodels.images import ImageInputError
from hubmodels.metrics import fpr_at_tpr, ood_auroc

PRESETS = ["standard", "pgdat", "trades", "weat", "der"]


# ---------------------------------------------------------------------------- the reference
def test_reference_threshold_keeps_the_asked_share_and_percentiles_follow_the_data():
    energies = torch.randn(5000, generator=torch.Generator().manual_seed(0)) * 2 - 5
    reference = EnergyReference(ReferenceShape(bins=80, tpr=0.95))
    reference.fit(energies)
    kept = (energies <= reference.threshold).double().mean()
    assert kept == pytest.approx(0.95, abs=0.002)
    assert not reference.out_of_distribution(torch.tensor([-5.0])).item()
    assert reference.out_of_distribution(torch.tensor([10.0])).item()
    probes = torch.tensor([-100.0, -7.0, -5.0, -3.0, 100.0])
    share = reference.percentile(probes)
    empirical = (energies[None] < probes[:, None]).double().mean(1)
    assert share[0] == 0 and share[-1] == 1
    assert torch.allclose(share, empirical, atol=0.02)  # the histogram's resolution
    assert (share.diff() >= 0).all()


@pytest.mark.parametrize(
    "energies, match",
    [(torch.tensor([1.0]), "at least two"), (torch.tensor([1.0, float("nan")]), "NaN")],
)
def test_reference_refuses_bad_energies(energies, match):
    with pytest.raises(ValueError, match=match):
        EnergyReference(ReferenceShape()).fit(energies)


def test_an_unfitted_reference_says_so():
    with pytest.raises(ValueError, match="empty"):
        EnergyReference(ReferenceShape()).percentile(torch.zeros(1))


@pytest.mark.parametrize("values", [{"bins": 1}, {"tpr": 1.0}, {"tpr": 0.2}, {"colour": 1}])
def test_reference_shape_validates(values):
    with pytest.raises(ValueError):
        ReferenceShape.from_dict(values)


def test_the_reference_round_trips_through_save_pretrained(tmp_path):
    model = tiny_classifier()
    images = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    model.fit_energy_reference(images, ReferenceShape(bins=10, source="toy test, 64 images"))
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["energy_reference"] == {"bins": 10, "tpr": 0.95, "source": "toy test, 64 images"}
    loaded = RobustClassifier.from_pretrained(tmp_path)
    for name in ("edges", "counts", "threshold"):
        assert torch.equal(
            getattr(loaded.energy_reference, name), getattr(model.energy_reference, name)
        )
    assert loaded.energy_reference.counts.sum() == 64


def test_a_checkpoint_without_a_reference_still_reports_energies(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path)
    loaded = RobustClassifier.from_pretrained(tmp_path)
    assert loaded.energy_reference is None
    report = loaded.energy_report(torch.rand(2, 1, 8, 8))
    assert report.ood_threshold is None and report.percentile is None
    assert report.marginal.shape == (2,)


# ---------------------------------------------------------------------------- energy reports
def test_energy_report_is_the_definitions(tiny_model):
    x = torch.rand(5, 1, 8, 8)
    report = energy_report(tiny_model, x)
    with torch.no_grad():
        logits = tiny_model(x).double()
    assert torch.allclose(report.joint, -logits)
    assert torch.allclose(report.marginal, -torch.logsumexp(logits, 1))
    assert torch.allclose(report.ood_score, -report.marginal)
    assert torch.equal(report.prediction, logits.argmax(1))
    # p(y|x) = exp(-E(x, y)) / exp(-E(x))
    assert torch.allclose(report.probabilities, torch.exp(report.marginal[:, None] - report.joint))


def test_energy_report_refuses_nan_and_wrong_shapes(tiny_model):
    with pytest.raises(ValueError, match="NaN"):
        tiny_model.energy_report(torch.full((1, 1, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="expected images of shape"):
        tiny_model.energy_report(torch.rand(1, 3, 8, 8))


# ---------------------------------------------------------------------------- attack traces
def test_trace_starts_clean_stays_in_the_ball_and_matches_plain_pgd(tiny_model):
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 1, 2])
    seen = []
    trace = attack_trace(tiny_model, x, y, eps=0.1, steps=6, callback=seen.append)
    assert [s.step for s in trace] == list(range(7)) and seen == trace
    assert torch.equal(trace[0].images, x)
    for s in trace:
        assert (s.perturbation.abs() <= 0.1 + 1e-6).all()
        assert s.images.min() >= 0 and s.images.max() <= 1
    plain = attacks.pgd(tiny_model, x, y, eps=0.1, alpha=0.025, steps=6, random_start="zero")
    assert torch.allclose(trace[-1].images, plain)


def test_pgd_callback_needs_a_single_run(tiny_model):
    x, y = torch.rand(1, 1, 8, 8), torch.tensor([0])
    with pytest.raises(ValueError, match="restarts=1"):
        attacks.pgd(
            tiny_model, x, y, eps=0.1, alpha=0.02, steps=2, restarts=2, callback=lambda *a: None
        )


@pytest.fixture(scope="module")
def test_images():
    from hubmodels.training.data import load_dataset

    test = load_dataset("fashion-mnist", augment=False, val_size=0).test
    return torch.stack([test[i][0] for i in range(1000)]), test.labels[:1000].clone()


@pytest.mark.slow
def test_attacks_move_a_standard_models_energies_far_more_than_a_robust_ones(test_images):
    """WEAT sec. 2.1's contrast, which the explorer shows: on the same 16 test images, PGD at the
    threat model raises the true class' E(x, y) several times more on the standard preset."""
    x, y = test_images[0][:16], test_images[1][:16]
    shift = {}
    for name in ("standard", "weat"):
        model = RobustClassifier.from_pretrained(f"fmnist-smallcnn-{name}")
        trace = model.attack_trace(x, y, steps=10)
        shift[name] = float((trace[-1].joint - trace[0].joint).mean())
        flipped = (trace[-1].prediction != trace[0].prediction).double().mean()
        if name == "standard":
            assert flipped > 0.9
    assert shift["weat"] > 0  # the attack raises E(x, y) of the true class on both
    assert shift["standard"] > 5 * shift["weat"]


def test_a_targeted_trace_lowers_the_targets_energy(test_images):
    model = RobustClassifier.from_pretrained("fmnist-smallcnn-standard")
    x, y = test_images[0][:4], test_images[1][:4]
    trace = model.attack_trace(x, y, target=(y + 1) % 10, steps=10)
    assert (trace[-1].target_joint < trace[0].target_joint).all()
    assert (trace[-1].prediction == (y + 1) % 10).all()


# ---------------------------------------------------------------------------- presets
@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_carries_a_reference_that_accepts_its_test_data(name, test_images):
    model = RobustClassifier.from_pretrained(f"fmnist-smallcnn-{name}")
    reference = model.energy_reference
    assert reference is not None and reference.shape.source == "fashion-mnist test, 10000 images"
    assert reference.counts.sum() == 10_000
    report = model.energy_report(test_images[0])
    accepted = 1 - report.out_of_distribution.double().mean()
    assert 0.92 <= accepted <= 0.98  # 95 % on all 10,000; these are the first 1,000
    noise = model.energy_report(
        torch.rand(200, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    )
    assert noise.percentile.mean() > report.percentile.mean()  # noise sits higher in energy


def _fit_energy_reference(*flags: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "hubmodels", "fit-energy-reference", *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_fit_energy_reference_cli_writes_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "model"
    result = _fit_energy_reference(
        "--model", "fmnist-smallcnn-standard", "--num-images", "300", "--bins", "20",
        "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "OOD when E(x) >" in result.stdout
    model = RobustClassifier.from_pretrained(out)
    assert model.energy_reference.counts.sum() == 300
    assert model.config["energy_reference"]["source"] == "fashion-mnist test, 300 images"


@pytest.mark.slow
def test_fit_energy_reference_cli_will_not_write_into_a_preset():
    result = _fit_energy_reference("--model", "fmnist-smallcnn-standard", "--num-images", "10")
    assert result.returncode == 2 and "pass --out DIR" in result.stderr


# ---------------------------------------------------------------------------- uploads
def test_a_photo_on_white_becomes_a_dark_28px_grey_input(tmp_path):
    photo = Image.new("RGB", (60, 40), "white")
    photo.paste((200, 30, 30), (20, 10, 40, 30))  # a red garment on white
    path = tmp_path / "shirt.jpg"
    photo.save(path)
    x, how = to_model_input(path, channels=1, size=28)
    assert x.shape == (1, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    assert x[0, 0, 0, 0] < 0.05 and x[0, 0, 14, 14] > 0.5  # background dark, garment light
    assert "60×40 upload" in how and "grey" in how and "inverted" in how
    same, _ = to_model_input(path, channels=1, size=28, invert=False)
    assert torch.allclose(same, 1 - x)


def test_an_upload_that_is_not_an_image_is_a_clear_error(tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("not an image")
    with pytest.raises(ImageInputError, match="not a readable image"):
        to_model_input(fake, channels=1, size=28)


# ---------------------------------------------------------------------------- OOD metrics
def test_ood_metrics_on_known_cases():
    a = torch.randn(2000, generator=torch.Generator().manual_seed(0))
    assert ood_auroc(a + 100, a) == pytest.approx(1.0, abs=1e-6)
    assert ood_auroc(a, a + 100) == pytest.approx(0.0, abs=1e-6)
    assert ood_auroc(a, a) == pytest.approx(0.5, abs=1e-6)
    assert fpr_at_tpr(a + 100, a) == 0.0
    assert fpr_at_tpr(a, a.clone()) == pytest.approx(0.95, abs=0.001)
    assert fpr_at_tpr(a, a, threshold=float("inf")) == 0.0
    with pytest.raises(ValueError, match="NaN"):
        ood_auroc(torch.tensor([float("nan")]), a)
    with pytest.raises(ValueError, match="at least one"):
        fpr_at_tpr(torch.tensor([]), a)
