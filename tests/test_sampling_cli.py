"""``python -m hubmodels fit-prior`` and ``sample``, in one process and under accelerate."""

import subprocess

import numpy as np
import pytest
from PIL import Image

from conftest import ACCELERATE_CPU_2, FASHION_MNIST_DIR
from hubmodels import RobustClassifier
from hubmodels.__main__ import main
from hubmodels.training.data import FASHION_MNIST_CLASSES

pytestmark = pytest.mark.skipif(
    not FASHION_MNIST_DIR.is_dir(), reason="needs dataset-fashion-mnist"
)


@pytest.fixture(scope="module")
def with_prior(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model") / "m"
    RobustClassifier(
        dataset="fashion-mnist", class_names=list(FASHION_MNIST_CLASSES)
    ).save_pretrained(folder)
    argv = ["fit-prior", "--model", str(folder), "--max-per-class", "40", "--clusters", "2"]
    assert main(argv) == 0
    return folder


def test_fit_prior_writes_a_loadable_prior(with_prior):
    model = RobustClassifier.from_pretrained(with_prior)
    assert model.config["prior"]["clusters"] == 2
    weights = model.prior.local_weight
    # 40 images a class and at least 20 a cluster: one or two clusters, each half or more.
    assert ((weights == 0) | (weights >= 0.5)).all() and (weights > 0).sum(1).max() <= 2
    assert model.prior.class_std[:, 0].min() > 0


def test_sample_writes_pngs_per_class_and_a_grid(with_prior, tmp_path):
    out = tmp_path / "s"
    argv = [
        "sample",
        "--model",
        str(with_prior),
        "--classes",
        "Sneaker",
        "3",
        "--n-per-class",
        "3",
        "--steps",
        "2",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert sorted(p.name for p in (out / "Sneaker").iterdir()) == [
        "00000.png",
        "00001.png",
        "00002.png",
    ]
    assert len(list((out / "Dress").iterdir())) == 3
    assert Image.open(out / "grid.png").size == (3 * 30, 2 * 30)


@pytest.mark.slow
def test_accelerate_launch_splits_the_work_and_writes_what_one_process_writes(with_prior, tmp_path):
    common = [
        "--model",
        str(with_prior),
        "--n-per-class",
        "150",
        "--classes",
        "0",
        "7",
        "--steps",
        "2",
        "--format",
        "npz",
    ]
    assert main(["sample", *common, "--out", str(tmp_path / "one")]) == 0
    command = [
        *ACCELERATE_CPU_2,
        "sample",
        *common,
        "--out",
        str(tmp_path / "two"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = np.load(tmp_path / "one" / "samples.npz"), np.load(tmp_path / "two" / "samples.npz")
    assert one["images"].shape == (300, 1, 28, 28)
    for key in ("images", "labels", "index", "steps"):
        assert np.array_equal(one[key], two[key]), key
    assert not list((tmp_path / "two").glob("part-*.npz"))


def test_unknown_class_is_one_clear_line(with_prior, tmp_path, capsys):
    argv = ["sample", "--model", str(with_prior), "--classes", "Hat", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "unknown class 'Hat'" in capsys.readouterr().err


def test_sampling_a_fresh_run_says_how_to_fit_its_prior_before_any_work(tmp_path, capsys):
    folder = tmp_path / "fresh"
    RobustClassifier(dataset="fashion-mnist").save_pretrained(folder)
    assert main(["sample", "--model", str(folder), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "has no sampling prior yet" in err and f"fit-prior --model {folder}" in err
    assert "sampling" not in err.split("error:")[0]  # no progress bar came first
    assert not (tmp_path / "s").exists()


def test_fit_prior_uses_as_many_images_as_the_run_trained_on(tmp_path, capsys):
    folder = tmp_path / "small-run"
    RobustClassifier(dataset="fashion-mnist", training={"train_subset": 300}).save_pretrained(
        folder
    )
    assert main(["fit-prior", "--model", str(folder), "--clusters", "1"]) == 0
    assert "prior fitted on 300 images" in capsys.readouterr().out
