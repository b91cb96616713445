"""The data registry: every dataset the trainer knows, split the same way.

``load_dataset(name)`` returns train / val / test datasets whose items are ``(image, label)``
with the image a float tensor in [0, 1] of shape (C, H, W) and the label an int. Models carry
their own normalisation, so nothing here normalises; ``DatasetInfo.mean/std``
are the statistics a model trained on the data may choose to store.

Splits (docs/methods.md 2.5):

* **val** is carved from the *training* data with a seeded permutation and is never augmented;
  model selection uses it, never the test set. WEAT selects on a synthetic set we do not have, and
  the [P] fallback there is "hold out 1,000 training images", hence ``val_size=1000``.
* **train_subset** keeps the first n of the remaining shuffled indices, taken round-robin over
  classes so the subset is class-balanced (class counts differ by at most one while every class
  has images left). A smaller subset is always a prefix of a larger one for the same seed, which
  the robust-overfitting experiment relies on when it compares subset sizes.
* **test** is the dataset's official test split (Tiny-ImageNet: its labelled ``val`` folder).
* **label_noise** (0 by default) gives a fraction of the *training* labels a wrong class, chosen
  uniformly among the other classes with a generator seeded by ``seed``: exactly
  ``round(fraction * n)`` images, the same ones for the same seed and subset. Val and test keep
  their true labels. Noisy labels make robust overfitting appear on data where it otherwise does
  not (the robust-overfitting experiment, docs/experiments.md).

Augmentation follows the WEAT recipe: RandomCrop(32, padding 4) + horizontal flip for CIFAR,
RandomCrop(64, padding 4) + flip for Tiny-ImageNet. SVHN and MNIST are digits, so they get the
crop without the flip; Fashion-MNIST gets RandomCrop(28, padding 2) + flip.

Nothing downloads unless ``download=True``; a missing dataset raises ``FileNotFoundError`` that
says where the files were looked for and how to get them. Fashion-MNIST is read from the Debian
package ``dataset-fashion-mnist`` when no ``root`` is given, which is how tests and CI train
offline. Other datasets default to ``$HUBMODELS_DATA`` or ``~/.cache/hubmodels/datasets``.

New datasets register with ``@register_dataset("name")`` on a function returning a
``DatasetSource``, the same pattern as timm's ``@register_model``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

from hubmodels.registry import Registry

from .idx import read_idx_pair

Transform = Callable[[torch.Tensor], torch.Tensor]

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DIGIT_CLASSES = tuple(str(d) for d in range(10))

# Where Debian's `dataset-fashion-mnist` installs the four IDX .gz files. Debian ships no MNIST
# package (apt-cache search mnist finds only this one), so MNIST needs `root` or a download.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

# ImageNet statistics for arbitrary folders: computing real ones would mean reading every image.
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# The carved test split of an image folder must not move when `seed` changes, or changing the
# seed would leak test images into training.
_TEST_CARVE_SEED = 0
_TEST_CARVE_FRACTION = 0.1


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about its training data (stored in its config)."""

    name: str
    num_classes: int
    in_channels: int
    image_size: int
    class_names: tuple[str, ...]
    mean: tuple[float, ...]  # per-channel pixel statistics on the [0, 1] scale
    std: tuple[float, ...]


@dataclass
class DataSplits:
    """Train (augmented), val (held out from train, never augmented) and test datasets."""

    train: Dataset
    val: Dataset
    test: Dataset
    info: DatasetInfo


# ---------------------------------------------------------------------------------------------
# Datasets: two base stores (in-memory uint8, or files on disk) and a view that picks indices
# and adds augmentation. Train and val share one store and differ only in indices and transform.


class TensorImages(Dataset):
    """Images held in memory as one uint8 tensor (N, C, H, W), converted to float per item.

    Keeping uint8 costs a quarter of the memory of float32 and the per-item ``float() / 255`` is a
    few microseconds, so the DataLoader is never the bottleneck for 28x28 or 32x32 data.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels.long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i].float().div_(255), int(self.labels[i])


class FileImages(Dataset):
    """Images read from disk per item, as RGB; optionally resized to ``size`` x ``size``.

    Resizing scales the shorter side to ``size`` and centre-crops, so aspect ratios are kept. RGBA
    and greyscale files are converted to RGB the way torchvision's ImageFolder loader does.
    """

    def __init__(self, paths: list[str], labels: torch.Tensor, size: int | None = None) -> None:
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
        self.paths = paths
        self.labels = labels.long()
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        with Image.open(self.paths[i]) as img:
            img = img.convert("RGB")
        if self.size is not None and img.size != (self.size, self.size):
            img = TF.center_crop(TF.resize(img, self.size), [self.size, self.size])
        return TF.pil_to_tensor(img).float().div_(255), int(self.labels[i])


class SplitView(Dataset):
    """The items ``indices`` of a base store, with an optional transform on the [0, 1] tensor.

    ``indices`` index the base store, so two views of one store can be checked for overlap.
    """

    def __init__(
        self,
        base: TensorImages | FileImages,
        indices: torch.Tensor,
        transform: Transform | None,
        labels: torch.Tensor | None = None,
    ) -> None:
        self.base = base
        self.indices = indices.long()
        self.transform = transform
        if labels is not None and len(labels) != len(self.indices):
            raise ValueError(f"{len(labels)} labels for {len(self.indices)} indices")
        # None: the store's labels. Given: these replace them (label noise), one per index.
        self._labels = None if labels is None else labels.long()

    @property
    def labels(self) -> torch.Tensor:
        """The labels of this view, in order (for class means, balanced sampling, PCA priors)."""
        return self.base.labels[self.indices] if self._labels is None else self._labels

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x, y = self.base[int(self.indices[i])]
        if self.transform is not None:
            x = self.transform(x)
        return x, y if self._labels is None else int(self._labels[i])


# ---------------------------------------------------------------------------------------------
# Splitting


def stratified_prefix(order: torch.Tensor, labels: torch.Tensor, n: int) -> torch.Tensor:
    """The first ``n`` entries of ``order`` taken round-robin over classes.

    ``labels[i]`` is the label of ``order[i]``. Each entry is ranked by how many earlier entries of
    its class precede it; sorting by (rank, position) visits every class once per round in the
    shuffled order, so the result is balanced and nested (prefix of any larger ``n``).
    """
    if not 0 < n <= len(order):
        raise ValueError(f"cannot take {n} of {len(order)} indices")
    ranks = torch.empty_like(labels)
    for c in labels.unique():
        members = labels == c
        ranks[members] = torch.arange(int(members.sum()))
    key = ranks * len(order) + torch.arange(len(order))
    return order[torch.argsort(key)[:n]]


def split_indices(
    labels: torch.Tensor, *, val_size: int, seed: int, train_subset: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded (train, val) index split of a training set; see the module docstring.

    Returns index tensors into ``labels``: ``val`` is the first ``val_size`` of a permutation,
    ``train`` the rest (or a class-balanced ``train_subset`` of it).
    """
    n = len(labels)
    if not 0 <= val_size < n:
        raise ValueError(f"val_size={val_size} must be in [0, {n}) for {n} training images")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val, rest = perm[:val_size], perm[val_size:]
    if train_subset is not None:
        if not 0 < train_subset <= len(rest):
            raise ValueError(
                f"train_subset={train_subset} must be in [1, {len(rest)}] "
                f"({n} training images minus val_size={val_size})"
            )
        rest = stratified_prefix(rest, labels[rest], train_subset)
    return rest, val


def noisy_labels(
    labels: torch.Tensor, fraction: float, num_classes: int, seed: int
) -> torch.Tensor:
    """A copy of ``labels`` with ``round(fraction * n)`` of them moved to another class.

    Which labels, and the class each moves to (uniform over the other ``num_classes - 1``), are
    drawn from a generator seeded by ``seed``, so a run is reproducible and a resumed run sees the
    same labels. Symmetric noise: every wrong class is equally likely.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"label noise must be a fraction in [0, 1], got {fraction}")
    out = labels.clone().long()
    n_flipped = round(fraction * len(out))
    if n_flipped == 0:
        return out
    if num_classes < 2:
        raise ValueError("label noise needs at least two classes")
    gen = torch.Generator().manual_seed(seed)
    flipped = torch.randperm(len(out), generator=gen)[:n_flipped]
    # A shift of 1..C-1 classes (mod C) lands on each other class with equal probability.
    shift = torch.randint(1, num_classes, (n_flipped,), generator=gen)
    out[flipped] = (out[flipped] + shift) % num_classes
    return out


# ---------------------------------------------------------------------------------------------
# The registry


@dataclass
class DatasetSource:
    """What a registered loader returns: full train and test stores, info, train augmentation."""

    train: TensorImages | FileImages
    test: TensorImages | FileImages
    info: DatasetInfo
    augment: Transform | None


# A loader takes (root, download, image_size) as keywords; root None means its default location.
Loader = Callable[..., DatasetSource]
DATASETS = Registry("dataset")
register_dataset = DATASETS.register  # @register_dataset("name") on a loader
_ALIASES = {
    "fmnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "tinyimagenet": "tiny-imagenet",
    "tiny-imagenet-200": "tiny-imagenet",
    "image-folder": "imagefolder",
}


def available_datasets() -> list[str]:
    """The registered dataset names, sorted."""
    return DATASETS.names()


def default_data_root() -> Path:
    """``$HUBMODELS_DATA`` or ``~/.cache/hubmodels/datasets``: where downloads go by default."""
    return Path(os.environ.get("HUBMODELS_DATA", "~/.cache/hubmodels/datasets")).expanduser()


def load_dataset(
    name: str,
    *,
    root: str | os.PathLike[str] | None = None,
    val_size: int = 1000,
    seed: int = 0,
    augment: bool = True,
    download: bool = False,
    train_subset: int | None = None,
    image_size: int | None = None,
    label_noise: float = 0.0,
) -> DataSplits:
    """Load a registered dataset and split it into train / val / test.

    Args:
        name: one of ``available_datasets()`` (case and ``_``/``-`` insensitive; "fmnist" works).
        root: the data folder; None uses the dataset's default (Debian path for Fashion-MNIST,
            else ``default_data_root()``). Required for "imagefolder".
        val_size: training images held out for validation (never augmented).
        seed: seeds the train/val permutation only; the same seed gives the same split.
        augment: apply the dataset's training augmentation to ``train``.
        download: allow torchvision to download CIFAR, SVHN or (Fashion-)MNIST into ``root``.
        train_subset: keep a class-balanced subset of this many training images.
        image_size: output side length for "imagefolder" (default 32); other datasets have a
            fixed size and only accept None or that size.
        label_noise: give this fraction of the training labels a wrong class (seeded by
            ``seed``); val and test are untouched.

    Raises:
        ValueError: unknown name or impossible sizes. FileNotFoundError: data missing.
    """
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(available_datasets())}")
    source = DATASETS[key](
        root=None if root is None else Path(root).expanduser(),
        download=download,
        image_size=image_size,
    )
    train_idx, val_idx = split_indices(
        source.train.labels, val_size=val_size, seed=seed, train_subset=train_subset
    )
    train_labels = None
    if label_noise:
        train_labels = noisy_labels(
            source.train.labels[train_idx], label_noise, source.info.num_classes, seed
        )
    return DataSplits(
        train=SplitView(source.train, train_idx, source.augment if augment else None, train_labels),
        val=SplitView(source.train, val_idx, None),
        test=SplitView(source.test, torch.arange(len(source.test)), None),
        info=source.info,
    )


def _check_fixed_size(name: str, image_size: int | None, native: int) -> None:
    if image_size not in (None, native):
        raise ValueError(
            f"{name} images are {native}x{native}; image_size={image_size} only "
            "applies to 'imagefolder' (resize in the model or the transform instead)"
        )


def _not_found(what: str, where: str, how: str, downloadable: bool = True) -> FileNotFoundError:
    hint = " Or pass download=True (CLI: --download) to fetch it." if downloadable else ""
    return FileNotFoundError(f"{what} was not found {where}. {how}{hint}")


# ---------------------------------------------------------------------------------------------
# CIFAR-10/100 and SVHN through torchvision (its pickles / .mat files, loaded once into memory)


def _crop_flip(size: int, padding: int) -> Transform:
    return T.Compose([T.RandomCrop(size, padding=padding), T.RandomHorizontalFlip()])


def _load_cifar(
    key: str,
    root: Path | None,
    download: bool,
    image_size: int | None,
    mean: tuple[float, ...],
    std: tuple[float, ...],
) -> DatasetSource:
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if key == "cifar10" else CIFAR100
    _check_fixed_size(key, image_size, 32)
    root = root or default_data_root()
    try:
        train, test = (cls(str(root), train=t, download=download) for t in (True, False))
    except RuntimeError as err:  # torchvision's "Dataset not found or corrupted"
        raise _not_found(
            key,
            f"under {root / cls.base_folder}",
            f"Unpack the python-version archive ({cls.filename}) into {root}.",
        ) from err

    def store(ds: CIFAR10) -> TensorImages:
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
        return TensorImages(images, torch.tensor(ds.targets))

    info = DatasetInfo(key, len(train.classes), 3, 32, tuple(train.classes), mean, std)
    return DatasetSource(store(train), store(test), info, _crop_flip(32, 4))


@register_dataset("cifar10")
def _cifar10(*, root: Path | None, download: bool, image_size: int | None) -> DatasetSource:
    return _load_cifar(
        "cifar10", root, download, image_size, (0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)
    )


@register_dataset("cifar100")
def _cifar100(*, root: Path | None, download: bool, image_size: int | None) -> DatasetSource:
    return _load_cifar(
        "cifar100", root, download, image_size, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
    )


@register_dataset("svhn")
def _svhn(*, root: Path | None, download: bool, image_size: int | None) -> DatasetSource:
    from torchvision.datasets import SVHN

    _check_fixed_size("svhn", image_size, 32)
    root = root or default_data_root()
    try:
        # The 531k "extra" images are not used: the WEAT numbers are on the 73,257 train images.
        train, test = (SVHN(str(root), split=s, download=download) for s in ("train", "test"))
    except RuntimeError as err:
        raise _not_found(
            "svhn", f"under {root}", "Put train_32x32.mat and test_32x32.mat there."
        ) from err

    def store(ds: SVHN) -> TensorImages:
        # torchvision already maps the .mat label 10 to digit 0 and stores NCHW uint8.
        return TensorImages(torch.from_numpy(ds.data), torch.from_numpy(ds.labels))

    info = DatasetInfo(
        "svhn", 10, 3, 32, DIGIT_CLASSES, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)
    )
    # No flip: mirrored digits are not digits.
    return DatasetSource(store(train), store(test), info, T.RandomCrop(32, padding=4))


# ---------------------------------------------------------------------------------------------
# Fashion-MNIST and MNIST straight from the IDX files (see idx.py)

_IDX_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _idx_path(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):  # torchvision keeps both the .gz and the extracted file
        if (directory / name).is_file():
            return directory / name
    return None


def _find_idx_dir(candidates: list[Path]) -> Path | None:
    stems = [s for pair in _IDX_STEMS.values() for s in pair]
    return next((d for d in candidates if all(_idx_path(d, s) for s in stems)), None)


def _load_idx_dataset(
    key: str,
    tv_name: str,
    root: Path | None,
    download: bool,
    image_size: int | None,
    debian_dir: Path | None,
    apt_hint: str,
    class_names: tuple[str, ...],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    augment: Transform,
) -> DatasetSource:
    _check_fixed_size(key, image_size, 28)
    base = root or default_data_root()
    # Accept a folder holding the files, or a torchvision-style root (<root>/<Name>/raw).
    candidates = [base, base / "raw", base / tv_name / "raw"]
    if root is None and debian_dir is not None:
        candidates.insert(0, debian_dir)
    directory = _find_idx_dir(candidates)
    if directory is None and download:
        import torchvision.datasets

        getattr(torchvision.datasets, tv_name)(str(base), train=True, download=True)
        directory = _find_idx_dir([base / tv_name / "raw"])
    if directory is None:
        where = "in any of " + ", ".join(str(c) for c in candidates)
        raise _not_found(
            key,
            where,
            f"{apt_hint}Or pass root= a folder holding the four "
            "IDX files (train-images-idx3-ubyte[.gz], ...).",
        )

    def store(split: str) -> TensorImages:
        images_stem, labels_stem = _IDX_STEMS[split]
        images, labels = read_idx_pair(
            _idx_path(directory, images_stem),
            _idx_path(directory, labels_stem),
            num_classes=len(class_names),
        )
        return TensorImages(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels))

    info = DatasetInfo(key, len(class_names), 1, 28, class_names, mean, std)
    return DatasetSource(store("train"), store("test"), info, augment)


@register_dataset("fashion-mnist")
def _fashion_mnist(*, root: Path | None, download: bool, image_size: int | None) -> DatasetSource:
    return _load_idx_dataset(
        "fashion-mnist",
        "FashionMNIST",
        root,
        download,
        image_size,
        debian_dir=DEBIAN_FASHION_MNIST,
        apt_hint="Install it with `apt-get install dataset-fashion-mnist` (Debian). ",
        class_names=FASHION_MNIST_CLASSES,
        mean=(0.2860,),
        std=(0.3530,),
        augment=_crop_flip(28, 2),
    )


@register_dataset("mnist")
def _mnist(*, root: Path | None, download: bool, image_size: int | None) -> DatasetSource:
    return _load_idx_dataset(
        "mnist",
        "MNIST",
        root,
        download,
        image_size,
        debian_dir=None,
        apt_hint="",
        class_names=DIGIT_CLASSES,
        mean=(0.1307,),
        std=(0.3081,),
        augment=T.RandomCrop(28, padding=2),  # no flip for digits
    )


# ---------------------------------------------------------------------------------------------
# Image folders: Tiny-ImageNet's own layout, and any torchvision ImageFolder


@register_dataset("tiny-imagenet")
def _tiny_imagenet(*, root: Path | None, download: bool, image_size: int | None) -> DatasetSource:
    """tiny-imagenet-200: train/<wnid>/images/*.JPEG; its labelled val/ folder is our test split.

    Classes are the sorted wnids, the order torchvision's ImageFolder gives the train folder.
    """
    _check_fixed_size("tiny-imagenet", image_size, 64)
    base = root or default_data_root()
    candidates = [base, base / "tiny-imagenet-200"]
    directory = next((d for d in candidates if (d / "wnids.txt").is_file()), None)
    if directory is None:
        # torchvision has no Tiny-ImageNet downloader, so download=True cannot help here.
        raise _not_found(
            "tiny-imagenet",
            "in any of " + ", ".join(str(c) for c in candidates),
            "Download http://cs231n.stanford.edu/tiny-imagenet-200.zip, unzip it and "
            "pass root= the tiny-imagenet-200 folder.",
            downloadable=False,
        )

    wnids = sorted((directory / "wnids.txt").read_text().split())
    index = {w: i for i, w in enumerate(wnids)}
    words: dict[str, str] = {}
    if (directory / "words.txt").is_file():
        for line in (directory / "words.txt").read_text().splitlines():
            wnid, _, text = line.partition("\t")
            words[wnid] = text.split(",")[0].strip()  # first synonym: "goldfish, Carassius ..."
    class_names = tuple(words.get(w, w) for w in wnids)

    train_paths, train_labels = [], []
    for w in wnids:
        files = sorted((directory / "train" / w / "images").glob("*.JPEG"))
        train_paths += [str(f) for f in files]
        train_labels += [index[w]] * len(files)
    test_paths, test_labels = [], []
    annotations = directory / "val" / "val_annotations.txt"
    if not train_paths or not annotations.is_file():
        raise FileNotFoundError(
            f"{directory} lacks train/<wnid>/images/*.JPEG or "
            f"val/val_annotations.txt; is the archive fully unpacked?"
        )
    for line in annotations.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) < 2:
            continue
        if fields[1] not in index:
            raise ValueError(f"{annotations}: wnid {fields[1]} is not in wnids.txt")
        test_paths.append(str(directory / "val" / "images" / fields[0]))
        test_labels.append(index[fields[1]])

    info = DatasetInfo(
        "tiny-imagenet",
        len(wnids),
        3,
        64,
        class_names,
        (0.4802, 0.4481, 0.3975),
        (0.2770, 0.2691, 0.2821),
    )
    return DatasetSource(
        FileImages(train_paths, torch.tensor(train_labels), 64),
        FileImages(test_paths, torch.tensor(test_labels), 64),
        info,
        _crop_flip(64, 4),
    )


@register_dataset("imagefolder")
def _imagefolder(*, root: Path | None, download: bool, image_size: int | None) -> DatasetSource:
    """Any ImageFolder (root/<class>/<image>), resized to ``image_size`` (default 32), RGB.

    If ``root/train`` exists it is the training folder and ``root/test`` (else ``root/val``), when
    present, is the test split. Otherwise (``root`` itself is the class folder, or there is no test
    folder) a class-balanced 10% of the training images is carved off as test with a fixed seed,
    so the test split does not move when ``seed`` changes. Normalisation stats are ImageNet's.
    """
    if root is None:
        raise ValueError("imagefolder needs root= a folder of <class>/<image> subfolders")
    if not root.is_dir():
        raise FileNotFoundError(f"imagefolder root {root} is not a directory")
    size = image_size or 32
    train_dir = root / "train" if (root / "train").is_dir() else root
    test_dir = next((d for d in (root / "test", root / "val") if d.is_dir()), None)
    if train_dir == root:
        test_dir = None  # without a train/ folder, test/ or val/ would be a class, not a split

    classes, class_to_idx = find_classes(str(train_dir))
    samples = make_dataset(str(train_dir), class_to_idx, IMG_EXTENSIONS)
    paths = [p for p, _ in samples]
    labels = torch.tensor([y for _, y in samples])
    if test_dir is not None:
        extra = set(find_classes(str(test_dir))[0]) - set(classes)
        if extra:
            raise ValueError(f"{test_dir} has classes missing from {train_dir}: {sorted(extra)}")
        test_samples = make_dataset(str(test_dir), class_to_idx, IMG_EXTENSIONS, allow_empty=True)
        train = FileImages(paths, labels, size)
        test = FileImages(
            [p for p, _ in test_samples],
            torch.tensor([y for _, y in test_samples], dtype=torch.long),
            size,
        )
    else:
        n_test = max(1, round(_TEST_CARVE_FRACTION * len(paths)))
        if n_test >= len(paths):
            raise ValueError(
                f"{train_dir} holds {len(paths)} images, too few to carve a test split"
            )
        perm = torch.randperm(len(paths), generator=torch.Generator().manual_seed(_TEST_CARVE_SEED))
        test_idx = stratified_prefix(perm, labels[perm], n_test)
        is_test = torch.zeros(len(paths), dtype=torch.bool)
        is_test[test_idx] = True
        train_idx = (~is_test).nonzero().flatten()  # keeps the folder order, as ImageFolder does
        train = FileImages([paths[i] for i in train_idx.tolist()], labels[train_idx], size)
        test = FileImages([paths[i] for i in test_idx.tolist()], labels[test_idx], size)

    info = DatasetInfo(
        "imagefolder", len(classes), 3, size, tuple(classes), _IMAGENET_MEAN, _IMAGENET_STD
    )
    return DatasetSource(train, test, info, _crop_flip(size, max(1, size // 8)))
