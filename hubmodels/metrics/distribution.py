"""Distances between a sample set and real data, on features we extract once.

Feature extraction is ours (``generation.extract_features``: batched, cacheable, any extractor:
the FID Inception or a domain classifier's penultimate layer); the statistics are the standard
libraries' (docs/sampling.md, "Metrics"):

* **FID**, **KID** and **MiFID** through torchmetrics. MiFID (Bai et al. 2021, the Kaggle
  "memorization-informed FID") divides FID by the mean nearest cosine distance between sample
  and real features when that distance is under ``cosine_eps``: copies of the training set,
  which FID alone rewards, blow it up.
* **precision / recall** (Kynkaanniemi et al. 2019) and **density / coverage** (Naeem et al.
  2020) through the ``prdc`` package: precision and density measure quality (samples inside
  the real manifold), recall and coverage diversity (real data covered by samples).

torchmetrics' metrics run a feature extractor inside ``update``; we hand them a pass-through
module, so one feature pass serves every metric and every figure names its extractor.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

__all__ = ["distribution_report"]

PAIRWISE_LIMIT = 10_000  # rows per set for the O(N^2) statistics (KID, MiFID, PRDC)


class Precomputed(nn.Module):
    """Feeds already-extracted features (N, D) to torchmetrics as if it had computed them."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def distribution_report(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    nearest_k: int = 5,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    cosine_eps: float = 0.1,
    pairwise_limit: int = PAIRWISE_LIMIT,
    seed: int = 0,
) -> dict[str, Any]:
    """FID, KID, MiFID, precision, recall, density and coverage of ``fake`` against ``real``.

    Args:
        real: reference features (N, D), e.g. of the training set.
        fake: sample features (M, D) from the same extractor.
        nearest_k: the k of the k-NN balls of precision/recall/density/coverage (5 in both
            papers).
        kid_subsets, kid_subset_size: KID's random subsets (the size is capped by the sets).
        cosine_eps: MiFID's threshold on the mean nearest cosine distance.
        pairwise_limit: KID, MiFID and PRDC use at most this many rows of each set, drawn
            with ``seed`` (their cost is quadratic); FID always uses every row.
        seed: seeds those draws and KID's subsets.

    Returns a JSON-able dict with ``fid``, ``kid_mean``, ``kid_std``, ``mifid``,
    ``mean_nearest_cosine``, ``precision``, ``recall``, ``density``, ``coverage``,
    ``num_real``, ``num_fake``, ``num_pairwise``, ``nearest_k``.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance
    from torchmetrics.image.mifid import MemorizationInformedFrechetInceptionDistance

    real, fake = _check(real, "real"), _check(fake, "fake")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"feature dimensions differ: {real.shape[1]} and {fake.shape[1]}; both sets must "
            "come from the same extractor"
        )
    dim = real.shape[1]
    generator = torch.Generator().manual_seed(seed)
    real_few = _subset(real, pairwise_limit, generator)
    fake_few = _subset(fake, pairwise_limit, generator)

    fid = FrechetInceptionDistance(feature=Precomputed(dim))
    fid.update(real, real=True)
    fid.update(fake, real=False)

    subset_size = min(kid_subset_size, len(real_few), len(fake_few))
    with warnings.catch_warnings():  # its "keeps every feature in memory" notice: we know
        warnings.simplefilter("ignore", UserWarning)
        kid = KernelInceptionDistance(
            feature=Precomputed(dim), subsets=kid_subsets, subset_size=subset_size
        )
    kid.update(real_few, real=True)
    kid.update(fake_few, real=False)
    mifid = MemorizationInformedFrechetInceptionDistance(
        feature=Precomputed(dim), cosine_distance_eps=cosine_eps
    )
    # torchmetrics takes, for each *real* row, the nearest fake one; MiFID's memorisation term
    # is, for each *sample*, the nearest real (training) image, so the roles are swapped here
    # (FID is symmetric). Otherwise samples that copy a few training images go unnoticed.
    mifid.update(fake_few, real=True)
    mifid.update(real_few, real=False)
    with torch.random.fork_rng(devices=[]):  # KID draws its subsets from the global RNG
        torch.manual_seed(seed)
        kid_mean, kid_std = kid.compute()
    prdc = _prdc(real_few, fake_few, nearest_k)
    return {
        "fid": float(fid.compute()),
        "kid_mean": float(kid_mean),
        "kid_std": float(kid_std),
        "mifid": float(mifid.compute()),
        "mean_nearest_cosine": _mean_nearest_cosine(fake_few, real_few),
        **prdc,
        "num_real": len(real),
        "num_fake": len(fake),
        "num_pairwise": min(len(real_few), len(fake_few)),
        "nearest_k": nearest_k,
    }


def _prdc(real: torch.Tensor, fake: torch.Tensor, nearest_k: int) -> dict[str, float]:
    try:
        from prdc import compute_prdc
    except ImportError as err:
        raise ImportError(
            "precision/recall/density/coverage need the prdc package: `pip install prdc`"
        ) from err
    if min(len(real), len(fake)) <= nearest_k:
        raise ValueError(f"need more than nearest_k = {nearest_k} rows in each set")
    # float64: for float32 input sklearn takes a chunked upcasting path that is ~20x slower.
    scores = compute_prdc(real.double().numpy(), fake.double().numpy(), nearest_k=nearest_k)
    return {k: float(v) for k, v in scores.items()}


def _mean_nearest_cosine(fake: torch.Tensor, real: torch.Tensor, block: int = 2048) -> float:
    """Mean over samples of 1 - max cosine similarity to a real row (MiFID's memorisation term)."""
    real_unit = torch.nn.functional.normalize(real.double(), dim=1)
    fake_unit = torch.nn.functional.normalize(fake.double(), dim=1)
    nearest = [
        (1 - (fake_unit[i : i + block] @ real_unit.T).abs().max(1).values)
        for i in range(0, len(fake_unit), block)
    ]
    return float(torch.cat(nearest).mean())


def _subset(x: torch.Tensor, limit: int, generator: torch.Generator) -> torch.Tensor:
    if len(x) <= limit:
        return x
    return x[torch.randperm(len(x), generator=generator)[:limit]]


def _check(x: torch.Tensor, what: str) -> torch.Tensor:
    x = torch.as_tensor(x).detach().cpu().double()
    if x.dim() != 2 or x.shape[0] < 2 or x.shape[1] == 0:
        raise ValueError(f"{what}: expected features (N >= 2, D), got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{what}: features contain NaN or infinite values")
    return x
