"""Data copying: do samples sit closer to the training set than fresh real images do?

FID, KID and a judge's accuracy all reward a sampler that returns (lightly perturbed) training
images. These statistics catch it (docs/sampling.md, "Telling generation from retrieval"):

* **copy ratio**: the median distance from each sample to its nearest training image, divided
  by the same median for held-out real images (the test set). Fresh real data scores 1.0 by
  construction; a sampler that copies scores well below 1, one that leaves the data manifold
  above 1.
* **share closer than real**: the fraction of samples nearer to a training image than 95 % of
  held-out real images are (the 5th percentile of their distances); about 0.05 for real data.
* **distinct nearest neighbours**: per class, the number of different training images that
  are someone's nearest neighbour, divided by the number of samples; a sampler that perturbs a
  few stored images scores low. The held-out set's value at the same count is the reference.
* **Meehan et al. (2020) Z_U**: the Mann-Whitney U test of "sample-to-train distances are no
  smaller than test-to-train distances", as a z-score (their C_T statistic without the cell
  partition): clearly negative means copying.

Distances are L2 in whatever space the inputs live in: pixels (flattened images) or features.
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["copy_report", "nearest_neighbours"]

Z_FOR_COPYING = -3.0  # Meehan et al. flag data copying at Z_U below about -3


def nearest_neighbours(
    queries: torch.Tensor, references: torch.Tensor, block: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance to and index of each query's nearest reference row, in blocks of queries.

    Args:
        queries: (N, D) points, or images (N, C, H, W) that are flattened.
        references: (M, D) points or images of the same size.
        block: queries per distance matrix, which bounds memory at ``block * M`` floats.
    """
    q = _flat(queries, "queries")
    r = _flat(references, "references")
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} dimensions, references {r.shape[1]}")
    distances, indices = [], []
    for start in range(0, len(q), block):
        d = torch.cdist(q[start : start + block], r)
        best = d.min(1)
        distances.append(best.values)
        indices.append(best.indices)
    return torch.cat(distances), torch.cat(indices)


def copy_report(
    samples: torch.Tensor,
    train: torch.Tensor,
    heldout: torch.Tensor,
    sample_labels: torch.Tensor | None = None,
    heldout_labels: torch.Tensor | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The data-copying statistics of ``samples`` against ``train``, calibrated on ``heldout``.

    Args:
        samples: generated points (N, D) or images (N, C, H, W).
        train: the training set the model (and its prior) saw, in the same space.
        heldout: real points the model never saw (the test set), in the same space.
        sample_labels, heldout_labels: classes, for the per-class distinct-neighbour share. The
            held-out reference is computed on as many held-out images per class as samples.
        seed: picks that equal-size held-out subset.

    Returns a JSON-able dict: ``copy_ratio``, ``closer_than_real`` (and ``closer_than_real_ref``
    for the held-out set itself, 0.05 up to ties), ``distinct_nn`` and ``distinct_nn_ref``,
    ``median_nn_distance`` and ``median_nn_distance_ref``, ``z_u`` and ``num_samples``.
    """
    sample_d, sample_idx = nearest_neighbours(samples, train)
    heldout_d, heldout_idx = nearest_neighbours(heldout, train)
    if (sample_labels is None) != (heldout_labels is None):
        raise ValueError("pass labels for both samples and held-out images, or for neither")
    threshold = torch.quantile(heldout_d, 0.05)
    generator = torch.Generator().manual_seed(seed)
    distinct, distinct_ref = _distinct_share(
        sample_idx, heldout_idx, sample_labels, heldout_labels, generator
    )
    return {
        "copy_ratio": float(sample_d.median() / heldout_d.median()),
        "closer_than_real": float((sample_d < threshold).double().mean()),
        "closer_than_real_ref": float((heldout_d < threshold).double().mean()),
        "distinct_nn": distinct,
        "distinct_nn_ref": distinct_ref,
        "median_nn_distance": float(sample_d.median()),
        "median_nn_distance_ref": float(heldout_d.median()),
        "z_u": mann_whitney_z(sample_d, heldout_d),
        "num_samples": len(sample_d),
    }


def mann_whitney_z(a: torch.Tensor, b: torch.Tensor) -> float:
    """z-score of the Mann-Whitney U statistic for "a tends to be larger than b" (ties: midranks).

    Negative when ``a`` (sample distances) tends to be smaller than ``b`` (held-out distances).
    """
    m, n = len(a), len(b)
    pooled = torch.cat([a, b]).double()
    order = pooled.argsort()
    ranks = torch.empty_like(pooled)
    ranks[order] = torch.arange(1, m + n + 1, dtype=torch.float64)
    values, inverse, counts = torch.unique(pooled, return_inverse=True, return_counts=True)
    if len(values) < len(pooled):  # average the ranks of tied values
        sums = torch.zeros(len(values), dtype=torch.float64).index_add_(0, inverse, ranks)
        ranks = (sums / counts)[inverse]
    u = float(ranks[:m].sum()) - m * (m + 1) / 2
    sd = math.sqrt(m * n * (m + n + 1) / 12)
    return (u - m * n / 2) / sd


def _distinct_share(
    sample_idx: torch.Tensor,
    heldout_idx: torch.Tensor,
    sample_labels: torch.Tensor | None,
    heldout_labels: torch.Tensor | None,
    generator: torch.Generator,
) -> tuple[float, float | None]:
    """Mean over classes of distinct nearest neighbours / samples; the held-out reference."""
    if sample_labels is None:
        sample_labels = torch.zeros(len(sample_idx), dtype=torch.long)
        heldout_labels = torch.zeros(len(heldout_idx), dtype=torch.long)
    sample_labels, heldout_labels = sample_labels.cpu(), heldout_labels.cpu()
    shares, refs = [], []
    for c in sorted(set(sample_labels.tolist())):
        mine = sample_idx[sample_labels == c]
        shares.append(mine.unique().numel() / mine.numel())
        pool = heldout_idx[heldout_labels == c]
        if len(pool) >= len(mine):
            pick = torch.randperm(len(pool), generator=generator)[: len(mine)]
            refs.append(pool[pick].unique().numel() / len(mine))
    reference = sum(refs) / len(refs) if len(refs) == len(shares) else None
    return sum(shares) / len(shares), reference


def _flat(x: torch.Tensor, what: str) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(
            f"{what}: expected (N, D) points or (N, C, H, W) images, got {tuple(x.shape)}"
        )
    x = x.reshape(len(x), -1).float()
    if not torch.isfinite(x).all():
        raise ValueError(f"{what}: contains NaN or infinite values")
    return x
