"""Tests for the data registry (hubmodels/training/data.py) and the IDX reader (idx.py).

Fashion-MNIST tests read the real files of Debian's `dataset-fashion-mnist` (installed in CI)
and skip only where that directory is missing. Everything else builds tiny datasets in tmp_path;
nothing downloads.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hubmodels.training.data import (
    DEBIAN_FASHION_MNIST,
    FASHION_MNIST_CLASSES,
    DataSplits,
    available_datasets,
    load_dataset,
    noisy_labels,
    split_indices,
)
from hubmodels.training.idx import IDXFormatError, read_idx, read_idx_pair

needs_fmnist = pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir(),
    reason="apt-get install dataset-fashion-mnist provides /usr/share/datasets/fashion-mnist",
)


@pytest.fixture(scope="module")
def fmnist() -> DataSplits:
    if not DEBIAN_FASHION_MNIST.is_dir():
        pytest.skip("Debian dataset-fashion-mnist is not installed")
    return load_dataset("fashion-mnist", val_size=1000, seed=0)


def _idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX: magic 0x0000 0x08 ndim, big-endian sizes, raw data."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_idx_set(directory: Path, n_train: int = 40, n_test: int = 10, gz: bool = True) -> None:
    """Four small MNIST-layout IDX files with every class present."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            data = _idx_bytes(array)
            name = f"{prefix}-{kind}-ubyte"
            if gz:
                (directory / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (directory / name).write_bytes(data)


# ------------------------------------------------------------------------------ Fashion-MNIST


@needs_fmnist
def test_fashion_mnist_sizes_and_info(fmnist: DataSplits) -> None:
    assert (len(fmnist.train), len(fmnist.val), len(fmnist.test)) == (59_000, 1_000, 10_000)
    info = fmnist.info
    assert (info.name, info.num_classes, info.in_channels, info.image_size) == (
        "fashion-mnist",
        10,
        1,
        28,
    )
    assert info.class_names == FASHION_MNIST_CLASSES
    assert info.class_names[0] == "T-shirt/top" and info.class_names[9] == "Ankle boot"
    assert info.mean == (0.2860,) and info.std == (0.3530,)
    # The official test split is balanced: 1,000 images per class.
    assert torch.bincount(fmnist.test.labels).tolist() == [1000] * 10


@needs_fmnist
def test_fashion_mnist_items_are_unit_range_floats(fmnist: DataSplits) -> None:
    for split in (fmnist.train, fmnist.val, fmnist.test):
        for i in (0, len(split) - 1):
            x, y = split[i]
            assert x.shape == (1, 28, 28) and x.dtype == torch.float32
            assert x.min() >= 0.0 and x.max() <= 1.0
            assert isinstance(y, int) and 0 <= y < 10
        assert split.labels.min() >= 0 and split.labels.max() < 10
    # Unaugmented items are exactly the stored bytes / 255.
    x, _ = fmnist.test[0]
    assert torch.equal(x, fmnist.test.base.images[0].float() / 255)


@needs_fmnist
def test_split_is_seeded_and_disjoint(fmnist: DataSplits) -> None:
    train, val = set(fmnist.train.indices.tolist()), set(fmnist.val.indices.tolist())
    assert not train & val
    assert len(train | val) == 60_000

    again = load_dataset("fashion_mnist", val_size=1000, seed=0)  # alias spelling, same split
    assert torch.equal(again.val.indices, fmnist.val.indices)
    assert torch.equal(again.train.indices, fmnist.train.indices)

    labels = fmnist.train.base.labels
    _, val1 = split_indices(labels, val_size=1000, seed=1)
    assert not torch.equal(val1, fmnist.val.indices)
    assert len(set(val1.tolist()) & val) < 100  # two random 1k draws of 60k barely overlap


@needs_fmnist
def test_train_subset_is_balanced_nested_and_outside_val(fmnist: DataSplits) -> None:
    small = load_dataset("fmnist", val_size=1000, seed=0, train_subset=500)
    assert len(small.train) == 500 and len(small.val) == 1000
    assert torch.bincount(small.train.labels, minlength=10).tolist() == [50] * 10
    assert torch.equal(small.val.indices, fmnist.val.indices)  # the subset never moves val
    assert not set(small.train.indices.tolist()) & set(small.val.indices.tolist())

    labels = fmnist.train.base.labels
    big, _ = split_indices(labels, val_size=1000, seed=0, train_subset=1003)
    counts = torch.bincount(labels[big], minlength=10)
    assert counts.sum() == 1003 and counts.max() - counts.min() <= 1
    # Nested: a smaller subset is a prefix of a larger one, for the robust-overfitting sweep.
    assert torch.equal(big[:500], small.train.indices)


@needs_fmnist
@needs_fmnist
def test_label_noise_changes_only_training_labels(fmnist: DataSplits) -> None:
    noisy = load_dataset("fashion-mnist", val_size=1000, seed=0, label_noise=0.3, augment=False)
    clean = fmnist.train.labels
    wrong = noisy.train.labels != clean
    assert int(wrong.sum()) == round(0.3 * len(clean))
    i = int(wrong.nonzero()[0])
    assert noisy.train[i][1] == int(noisy.train.labels[i]) != int(clean[i])  # items carry it
    assert torch.equal(noisy.val.labels, fmnist.val.labels)
    assert torch.equal(noisy.test.labels, fmnist.test.labels)
    assert torch.equal(noisy.train.indices, fmnist.train.indices)  # same images, same split


def test_noisy_labels_flip_an_exact_seeded_fraction_to_other_classes() -> None:
    labels = torch.arange(10_000) % 10
    a = noisy_labels(labels, 0.2, 10, seed=3)
    moved = a != labels
    assert int(moved.sum()) == 2000  # exactly round(0.2 n), and never onto the true class
    assert torch.equal(a, noisy_labels(labels, 0.2, 10, seed=3))
    assert not torch.equal(a, noisy_labels(labels, 0.2, 10, seed=4))
    # symmetric: the shift to the wrong class is uniform over the other nine (200 each, ~13 sd)
    shift = ((a - labels) % 10)[moved]
    counts = torch.bincount(shift, minlength=10)
    assert counts[0] == 0 and (counts[1:] - 2000 / 9).abs().max() < 60
    assert torch.equal(noisy_labels(labels, 0.0, 10, seed=3), labels)
    assert torch.equal(labels, torch.arange(10_000) % 10)  # the input is not modified
    with pytest.raises(ValueError, match="fraction in"):
        noisy_labels(labels, 1.2, 10, seed=0)


def test_val_is_never_augmented_and_train_is(fmnist: DataSplits) -> None:
    torch.manual_seed(0)
    assert torch.equal(fmnist.val[0][0], fmnist.val[0][0])
    assert torch.equal(fmnist.test[0][0], fmnist.test[0][0])
    views = torch.stack([fmnist.train[0][0] for _ in range(16)])
    assert len(torch.unique(views, dim=0)) > 1
    # Augmentation keeps the shape and the [0, 1] range (zero padding, crop, flip).
    assert views.shape[1:] == (1, 28, 28) and views.min() >= 0 and views.max() <= 1

    plain = load_dataset("fashion-mnist", seed=0, augment=False)
    assert torch.equal(plain.train[0][0], plain.train[0][0])


# ------------------------------------------------------------------------------ IDX reader


def test_read_idx_round_trip_gz_and_plain(tmp_path: Path) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(_idx_bytes(array))
    (tmp_path / "a.gz").write_bytes(gzip.compress(_idx_bytes(array)))
    for name in ("a", "a.gz"):
        out = read_idx(tmp_path / name, ndim=3)
        assert out.dtype == np.uint8 and np.array_equal(out, array)
        out[0, 0, 0] = 7  # writable, so torch.from_numpy does not warn


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 3) + b"\x00\x01\x02"), "magic"),
        (gzip.compress(b"\x00\x00\x0d\x03" + struct.pack(">3I", 1, 1, 1) + b"\x00"), "magic"),
        (
            gzip.compress(b"\x00\x00\x08\x03" + struct.pack(">3I", 2, 28, 28) + b"\x00" * 99),
            "holds",
        ),
        (gzip.compress(_idx_bytes(np.zeros((5, 28, 28), np.uint8)))[:-40], "truncated"),
        (b"\x1f\x8bnot really gzip at all", "gzip"),
        (b"\x00\x00", "too short"),
    ],
    ids=["labels-rank", "wrong-dtype", "size-mismatch", "truncated-gz", "bad-gz", "tiny"],
)
def test_read_idx_rejects_corrupt_files(tmp_path: Path, payload: bytes, message: str) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(payload)
    with pytest.raises(IDXFormatError, match=message) as info:
        read_idx(path, ndim=3)
    assert str(path) in str(info.value)


def test_read_idx_pair_checks_counts_and_label_range(tmp_path: Path) -> None:
    (tmp_path / "img").write_bytes(_idx_bytes(np.zeros((3, 2, 2), np.uint8)))
    (tmp_path / "lab2").write_bytes(_idx_bytes(np.zeros(2, np.uint8)))
    (tmp_path / "lab3").write_bytes(_idx_bytes(np.array([0, 1, 10], np.uint8)))
    with pytest.raises(IDXFormatError, match="do not belong together"):
        read_idx_pair(tmp_path / "img", tmp_path / "lab2", num_classes=10)
    with pytest.raises(IDXFormatError, match="outside"):
        read_idx_pair(tmp_path / "img", tmp_path / "lab3", num_classes=10)


def test_corrupt_file_surfaces_through_load_dataset(tmp_path: Path) -> None:
    _write_idx_set(tmp_path)
    good = (tmp_path / "train-images-idx3-ubyte.gz").read_bytes()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(IDXFormatError, match="corrupt or truncated"):
        load_dataset("fashion-mnist", root=tmp_path, val_size=5)


# ------------------------------------------------------------------------------ MNIST layout


def test_mnist_from_torchvision_layout_without_flip(tmp_path: Path) -> None:
    _write_idx_set(tmp_path / "MNIST" / "raw", gz=False)  # what torchvision's download extracts
    splits = load_dataset("mnist", root=tmp_path, val_size=5, train_subset=20)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (20, 5, 10)
    assert splits.info.class_names == tuple("0123456789") and splits.info.in_channels == 1
    assert splits.info.mean == (0.1307,)
    assert torch.bincount(splits.train.labels, minlength=10).tolist() == [2] * 10
    assert "Flip" not in repr(splits.train.transform)  # mirrored digits are not digits


def test_missing_idx_data_names_apt_and_download(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist") as info:
        load_dataset("fashion-mnist", root=tmp_path)
    assert "download=True" in str(info.value) and "--download" in str(info.value)
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_dataset("mnist", root=tmp_path)


# ------------------------------------------------------------------------------ image folders


def _write_png(path: Path, mode: str, size: tuple[int, int], value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = {"RGB": (value, 0, 0), "RGBA": (0, value, 0, 128), "L": value}[mode]
    Image.new(mode, size, colour).save(path)


def test_imagefolder_flat_layout_carves_a_fixed_test_split(tmp_path: Path) -> None:
    for cls in ("cat", "dog"):
        for i in range(10):
            mode = ("RGB", "RGBA", "L")[i % 3]  # every mode, odd sizes, all to 3x16x16
            _write_png(tmp_path / cls / f"{i}.png", mode, (20 + i, 17), 10 * i)
    splits = load_dataset("imagefolder", root=tmp_path, val_size=2, image_size=16, seed=3)
    assert splits.info.class_names == ("cat", "dog") and splits.info.image_size == 16
    assert (len(splits.train), len(splits.val), len(splits.test)) == (16, 2, 2)
    assert torch.bincount(splits.test.labels).tolist() == [1, 1]  # balanced carve
    for split in (splits.train, splits.val, splits.test):
        for i in range(len(split)):
            x, y = split[i]
            assert x.shape == (3, 16, 16) and x.min() >= 0 and x.max() <= 1 and y in (0, 1)
    # The carved test split does not depend on the val seed.
    other = load_dataset("imagefolder", root=tmp_path, val_size=2, image_size=16, seed=4)
    assert other.test.base.paths == splits.test.base.paths
    assert not set(splits.test.base.paths) & set(splits.train.base.paths)


def test_imagefolder_uses_test_subfolder_and_checks_classes(tmp_path: Path) -> None:
    for cls in ("a", "b"):
        for i in range(3):
            _write_png(tmp_path / "train" / cls / f"{i}.png", "RGB", (8, 8), 50)
    _write_png(tmp_path / "test" / "b" / "0.png", "L", (40, 30), 200)
    splits = load_dataset("imagefolder", root=tmp_path, val_size=1)
    assert splits.info.image_size == 32 and (len(splits.train), len(splits.test)) == (5, 1)
    x, y = splits.test[0]
    assert x.shape == (3, 32, 32) and y == 1
    assert torch.allclose(x, torch.full_like(x, 200 / 255))  # greyscale copied to all channels

    _write_png(tmp_path / "test" / "zebra" / "0.png", "RGB", (8, 8), 1)
    with pytest.raises(ValueError, match="zebra"):
        load_dataset("imagefolder", root=tmp_path, val_size=1)


def test_tiny_imagenet_layout(tmp_path: Path) -> None:
    root = tmp_path / "tiny-imagenet-200"
    wnids = ["n02", "n01"]  # deliberately unsorted: classes follow sorted wnids
    root.mkdir()
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (root / "words.txt").write_text("n01\tgoldfish, Carassius auratus\nn02\tEgyptian cat\n")
    for w in wnids:
        for i in range(4):
            path = root / "train" / w / "images" / f"{w}_{i}.JPEG"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("L" if i == 0 else "RGB", (64, 64), 90).save(path, format="JPEG")
    (root / "val" / "images").mkdir(parents=True)
    Image.new("RGB", (64, 64), 10).save(root / "val" / "images" / "val_0.JPEG", format="JPEG")
    (root / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn02\t0\t0\t63\t63\n")

    splits = load_dataset("tiny-imagenet", root=tmp_path, val_size=2)  # parent folder works too
    assert splits.info.class_names == ("goldfish", "Egyptian cat")
    assert (len(splits.train), len(splits.val), len(splits.test)) == (6, 2, 1)
    x, y = splits.test[0]
    assert x.shape == (3, 64, 64) and y == 1
    assert splits.train[0][0].shape == (3, 64, 64)


def test_tiny_imagenet_missing_says_where_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="tiny-imagenet-200.zip"):
        load_dataset("tiny-imagenet", root=tmp_path)


# ------------------------------------------------------------------------------ registry


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "svhn"])
def test_torchvision_datasets_without_data_ask_for_download(tmp_path: Path, name: str) -> None:
    with pytest.raises(FileNotFoundError, match="download=True") as info:
        load_dataset(name, root=tmp_path, download=False)
    assert str(tmp_path) in str(info.value)
    assert not any(tmp_path.iterdir())  # nothing was fetched or created


def test_registry_names_and_unknown_name() -> None:
    names = available_datasets()
    expected = ["cifar10", "cifar100", "fashion-mnist", "imagefolder", "mnist", "svhn"]
    assert set(expected + ["tiny-imagenet"]) <= set(names)
    with pytest.raises(ValueError, match="unknown dataset 'imagenet-21k'") as info:
        load_dataset("imagenet-21k")
    assert all(n in str(info.value) for n in names)


def test_bad_arguments_fail_before_loading(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="image_size"):
        load_dataset("cifar10", root=tmp_path, image_size=64)
    with pytest.raises(ValueError, match="needs root"):
        load_dataset("imagefolder")
    labels = torch.arange(10) % 2
    with pytest.raises(ValueError, match="val_size"):
        split_indices(labels, val_size=10, seed=0)
    with pytest.raises(ValueError, match="train_subset"):
        split_indices(labels, val_size=4, seed=0, train_subset=7)
