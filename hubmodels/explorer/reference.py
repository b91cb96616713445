"""Where real data lies in energy: the histogram and OOD threshold a checkpoint carries.

The energy explorer asks two questions of an input's marginal energy E(x) = -logsumexp f(x)
(docs/energy_explorer.md):

* where does E(x) fall among the energies of real test images? A histogram of those energies
  answers it offline, so it is stored in the checkpoint beside the weights, like the sampling
  prior (a histogram is a statistic: no image is stored);
* is x out of distribution? Liu et al. (2020) score inputs by -E(x) (higher means more like the
  training data) and put the threshold where 95 % of in-distribution test images score above it
  (the 95 % true-positive-rate operating point). We store that threshold in energy units:
  x is flagged out of distribution when E(x) lies above it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class ReferenceShape:
    """The size and meaning of a stored energy reference (kept in ``config.json``).

    Args:
        bins: histogram bins over the range of the reference energies.
        tpr: the share of in-distribution images the OOD threshold keeps (0.95: FPR@95's point).
        source: what the energies were measured on, e.g. "fashion-mnist test, 10000 images".
    """

    bins: int = 60
    tpr: float = 0.95
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.bins, int) or not 2 <= self.bins <= 1000:
            raise ValueError(f"bins must be a whole number in [2, 1000], got {self.bins!r}")
        if not 0.5 <= self.tpr < 1.0:
            raise ValueError(f"tpr must be in [0.5, 1), got {self.tpr!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ReferenceShape:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"energy_reference has unknown keys {unknown}; expected {sorted(known)}"
            )
        return cls(**values)


class EnergyReference(nn.Module):
    """Histogram of real images' E(x) and the OOD threshold, as buffers saved with the weights."""

    def __init__(self, shape: ReferenceShape) -> None:
        super().__init__()
        self.shape = shape
        self.register_buffer("edges", torch.zeros(shape.bins + 1))
        self.register_buffer("counts", torch.zeros(shape.bins))
        self.register_buffer("threshold", torch.zeros(()))

    @property
    def fitted(self) -> bool:
        return bool(self.counts.sum() > 0)

    @torch.no_grad()
    def fit(self, energies: torch.Tensor) -> None:
        """Fill the buffers from the marginal energies (N,) of real in-distribution images."""
        energies = energies.detach().double().flatten().cpu()
        if energies.numel() < 2:
            raise ValueError("an energy reference needs at least two images")
        if not torch.isfinite(energies).all():
            raise ValueError("the reference energies contain NaN or inf: is the model diverged?")
        low, high = float(energies.min()), float(energies.max())
        margin = max(high - low, 1e-3) * 0.02  # the extremes fall inside the outer bins
        edges = torch.linspace(low - margin, high + margin, self.shape.bins + 1)
        counts = torch.histogram(energies, edges.double()).hist
        self.edges.copy_(edges)
        self.counts.copy_(counts)
        # E(x) <= threshold for a share `tpr` of the real images (their -E(x) is above -threshold).
        self.threshold.copy_(torch.quantile(energies, self.shape.tpr))

    def _check(self) -> None:
        if not self.fitted:
            raise ValueError("the energy reference is empty: fit it first")

    def percentile(self, energies: torch.Tensor) -> torch.Tensor:
        """Share of the reference images with lower E(x) than each of ``energies`` (N,), in
        [0, 1], read off the histogram (linear within a bin)."""
        self._check()
        e = energies.detach().double().flatten().cpu()
        edges, counts = self.edges.double(), self.counts.double()
        cdf = torch.cat([torch.zeros(1, dtype=torch.float64), counts.cumsum(0) / counts.sum()])
        position = torch.bucketize(e, edges).clamp(1, len(edges) - 1)  # right edge index
        left, right = edges[position - 1], edges[position]
        within = ((e - left) / (right - left)).clamp(0, 1)
        share = cdf[position - 1] + within * (cdf[position] - cdf[position - 1])
        return torch.where(e <= edges[0], 0.0, torch.where(e >= edges[-1], 1.0, share))

    def out_of_distribution(self, energies: torch.Tensor) -> torch.Tensor:
        """True where E(x) lies above the threshold: the OOD verdict at ``tpr`` (N,) bool."""
        self._check()
        return energies.detach().flatten().cpu() > self.threshold.cpu()
