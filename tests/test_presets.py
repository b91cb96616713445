"""The embedded presets: they load offline, carry the numbers checkpoints.md quotes, and their
weights are the ones that were measured (issue: presets)."""

import re
from pathlib import Path

import pytest
from torch.utils.data import DataLoader, Subset

from conftest import FASHION_MNIST_DIR
from hubmodels import RobustClassifier
from hubmodels.hub import PRESETS, available_presets
from hubmodels.metrics import accuracy, pgd_attack
from hubmodels.training.data import load_dataset

CATALOGUE = Path(__file__).parents[1] / "checkpoints.md"
COLUMNS = {"clean_acc": 5, "pgd20_acc": 6, "autoattack_acc": 7}
STANDARD = "fmnist-smallcnn-standard"
ROBUST = sorted(n for n in PRESETS if n != STANDARD)
needs_data = pytest.mark.skipif(
    not FASHION_MNIST_DIR.is_dir(), reason="needs dataset-fashion-mnist"
)


def _catalogue_row(name: str) -> list[str]:
    for line in CATALOGUE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == f"`{name}`":
            return cells
    raise AssertionError(f"{name} has no row in checkpoints.md")


def _percent(value) -> str:
    return "not measured" if value is None else f"{100 * value:.2f} %"


@pytest.fixture(scope="module")
def test_images():
    test = load_dataset("fashion-mnist").test
    return Subset(test, range(500))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_checkpoints_md_and_the_model_card_quote_the_config_numbers(name):
    model = RobustClassifier.from_pretrained(name)
    metrics = model.config["metrics"]
    row = _catalogue_row(name)
    for key, column in COLUMNS.items():
        assert row[column] == _percent(metrics.get(key)), (name, key)
    card = (PRESETS[name].path / "README.md").read_text()
    for key in COLUMNS:
        if key in metrics:
            assert re.search(rf"\| {key} \| {metrics[key]:.4f} \|", card), (name, key)


@needs_data
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_clean_accuracy_on_the_fixed_500_image_prefix_matches_the_record(name, test_images):
    model = RobustClassifier.from_pretrained(name)
    measured = accuracy(model, DataLoader(test_images, batch_size=250))
    assert measured == pytest.approx(model.config["metrics"]["clean_acc_first500"], abs=0.01)


def test_every_registered_preset_is_installed():
    assert sorted(PRESETS) == available_presets()


@pytest.fixture(scope="module")
def pgd_accuracy_on_200(test_images):
    """PGD-10 accuracy of a preset on the first 200 test images, at its own epsilon."""
    loader = DataLoader(Subset(test_images, range(200)), batch_size=200)

    def measure(name: str) -> float:
        model = RobustClassifier.from_pretrained(name)
        attack = pgd_attack(model.config["threat_model"]["epsilon"], steps=10)
        return accuracy(model, loader, attack)

    return measure


@needs_data
@pytest.mark.slow
@pytest.mark.parametrize("name", ROBUST)
def test_robust_presets_resist_pgd_where_the_standard_one_does_not(name, pgd_accuracy_on_200):
    # A quick check that the shipped weights are the adversarially trained ones: the recorded
    # PGD-20 test accuracies are 71-77 points apart, so 30 points leaves room for noise.
    assert pgd_accuracy_on_200(name) > pgd_accuracy_on_200(STANDARD) + 0.3


def test_the_standard_presets_card_does_not_call_it_robust_and_cards_name_their_preset():
    from hubmodels import presets_catalog as catalog

    standard = catalog.model_card_markdown("fmnist-smallcnn-standard")
    assert "A robust classifier" not in standard and "no adversarial training" in standard
    assert 'RobustClassifier.from_pretrained("fmnist-smallcnn-standard")' in standard
    weat = catalog.model_card_markdown("fmnist-smallcnn-weat")
    assert weat.count("A robust classifier") == 1 and "<this repo" not in weat
