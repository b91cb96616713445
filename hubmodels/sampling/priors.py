"""Class-conditional start distributions for sampling, stored inside the checkpoint.

Three priors share one set of buffers (methods.md 1.4, 2.7, 3.5):

* **class PCA** (WEAT "PCA per class"): x0 = mu_y + sum_i a_i s_i U_i with a_i ~ N(0, scale^2).
  ``s_i`` is each component's standard deviation, so ``scale`` is in units of component std and
  does not depend on the class size (the WEAT code's sigma_PCA does: methods.md 2.7 note, 5.8).
  Components are kept up to a retained-variance ratio and truncated to ``components``.
* **class Gaussian** (Santurkar et al. 2019): N(mu_y, U S^2 U^T + r_y^2 I), the same low-rank
  basis plus an isotropic residual r_y carrying the variance the basis leaves out. It stands in
  for the full D x D covariance, which would not fit in a small checkpoint.
* **local class PCA** (DER): PCA over the ``neighbours`` nearest same-class training images of
  an anchor image (nearest in pixel space or in the model's penultimate features), centred on
  the anchor itself; sampling picks an anchor and perturbs it along its local components.

The prior also stores the class reference energies E_y, the mean joint energy of real class-y
training images under the same model, which energy guidance and adaptive stopping aim at
(methods.md 5.10). Bases and anchors are stored as float16 (their values lie in [-1, 1] and
[0, 1]; the round-off is below 1e-3, far under a pixel's 1/255), the rest as float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

INITS = ("pca", "gaussian", "local_pca", "uniform")


@dataclass(frozen=True)
class PriorShape:
    """The sizes of a stored prior: JSON-able, kept in the checkpoint's config."""

    components: int = 64
    anchors: int = 12
    local_components: int = 8
    neighbours: int = 64
    retained_variance: float = 0.95
    neighbour_space: str = "pixel"  # or "features": the model's penultimate features

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class ClassPrior(nn.Module):
    """The buffers of all three priors for K classes of D-pixel images."""

    def __init__(self, num_classes: int, dim: int, shape: PriorShape) -> None:
        super().__init__()
        k, d, c = num_classes, dim, shape.components
        a, l = shape.anchors, shape.local_components
        self.shape = shape
        self.register_buffer("class_mean", torch.zeros(k, d))
        self.register_buffer("class_basis", torch.zeros(k, c, d, dtype=torch.float16))
        self.register_buffer("class_std", torch.zeros(k, c))
        self.register_buffer("residual_std", torch.zeros(k))
        self.register_buffer("local_anchor", torch.zeros(k, a, d, dtype=torch.float16))
        self.register_buffer("local_basis", torch.zeros(k, a, l, d, dtype=torch.float16))
        self.register_buffer("local_std", torch.zeros(k, a, l))
        self.register_buffer("reference_energy", torch.zeros(k))

    @property
    def num_classes(self) -> int:
        return self.class_mean.shape[0]

    # ------------------------------------------------------------------ fitting
    @torch.no_grad()
    def fit(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        neighbour_features: torch.Tensor | None = None,
        seed: int = 0,
    ) -> None:
        """Fit every prior from training ``images`` (N, D) in [0, 1] and ``labels`` (N,).

        ``neighbour_features`` (N, F) replaces pixels for the nearest-neighbour search of the
        local prior (the model's penultimate features, when ``neighbour_space="features"``).
        """
        generator = torch.Generator().manual_seed(seed)
        images = images.reshape(len(images), -1).double()
        for y in range(self.num_classes):
            members = images[labels == y]
            if len(members) < 2:
                raise ValueError(f"class {y} has {len(members)} training images; need at least 2")
            self._fit_class(y, members)
            search = members if neighbour_features is None else neighbour_features[labels == y]
            self._fit_local(y, members, search.double(), generator)

    def _fit_class(self, y: int, members: torch.Tensor) -> None:
        mean = members.mean(0)
        _, singular, vt = torch.linalg.svd(members - mean, full_matrices=False)
        variance = singular.pow(2) / (len(members) - 1)  # per-component variance
        ratio = variance.cumsum(0) / variance.sum()
        # Components up to the retained-variance crossing, then truncated to the stored size.
        keep = int((ratio < self.shape.retained_variance).sum().item()) + 1
        keep = min(keep, self.shape.components, len(variance))
        self.class_mean[y] = mean.float()
        self.class_basis[y].zero_()
        self.class_std[y].zero_()
        self.class_basis[y, :keep] = vt[:keep].half()
        self.class_std[y, :keep] = variance[:keep].sqrt().float()
        dim = members.shape[1]
        left_out = (variance.sum() - variance[:keep].sum()).clamp(min=0)
        self.residual_std[y] = (left_out / dim).sqrt().float()

    def _fit_local(
        self, y: int, members: torch.Tensor, search: torch.Tensor, generator: torch.Generator
    ) -> None:
        anchors = self.local_anchor.shape[1]
        chosen = torch.randperm(len(members), generator=generator)[:anchors]
        if len(chosen) < anchors:  # tiny classes: reuse anchors rather than leave zeros
            chosen = chosen[torch.arange(anchors) % len(chosen)]
        distances = torch.cdist(search[chosen], search)
        k = min(self.shape.neighbours, len(members))
        neighbours = distances.topk(k, largest=False).indices  # includes the anchor itself
        rank = self.local_basis.shape[2]
        for slot, (anchor, idx) in enumerate(zip(chosen, neighbours, strict=True)):
            local = members[idx]
            _, singular, vt = torch.linalg.svd(local - local.mean(0), full_matrices=False)
            keep = min(rank, len(singular))
            self.local_anchor[y, slot] = members[anchor].half()
            self.local_basis[y, slot].zero_()
            self.local_std[y, slot].zero_()
            self.local_basis[y, slot, :keep] = vt[:keep].half()
            self.local_std[y, slot, :keep] = (singular[:keep] / max(k - 1, 1) ** 0.5).float()

    # ------------------------------------------------------------------ sampling
    def sample(
        self, labels: torch.Tensor, init: str, scale: float, generator: torch.Generator
    ) -> torch.Tensor:
        """Start images (N, D) in [0, 1] for class ``labels`` from the named prior."""
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; choose one of {INITS}")
        n, d = len(labels), self.class_mean.shape[1]
        device = self.class_mean.device

        def normal(*size: int) -> torch.Tensor:
            return torch.randn(*size, generator=generator).to(device)

        if init == "uniform":  # the JEM-style start that fails for robust classifiers (2.7)
            return torch.rand(n, d, generator=generator).to(device)
        if init == "local_pca":
            slot = torch.randint(self.local_anchor.shape[1], (n,), generator=generator).to(device)
            centre = self.local_anchor[labels, slot].float()
            basis = self.local_basis[labels, slot].float()
            std = self.local_std[labels, slot]
        else:
            centre = self.class_mean[labels]
            basis, std = self.class_basis[labels].float(), self.class_std[labels]
        coefficients = scale * std * normal(n, std.shape[1])
        x = centre + torch.einsum("nc,ncd->nd", coefficients, basis)
        if init == "gaussian":
            x = x + scale * self.residual_std[labels, None] * normal(n, d)
        return x.clamp(0.0, 1.0)
