"""Class-conditional start distributions for sampling, stored inside the checkpoint.

Three priors share one set of buffers (docs/sampling.md):

* **class PCA** (WEAT "PCA per class"): x0 = mu_y + sum_i a_i s_i U_i with a_i ~ N(0, scale^2).
  ``s_i`` is each component's standard deviation, so ``scale`` is in units of component std and
  does not depend on the class size (the WEAT code's sigma_PCA does). Components are kept up to
  a retained-variance ratio and truncated to ``components``.
* **class Gaussian** (Santurkar et al. 2019): N(mu_y, U S^2 U^T + r_y^2 I), the same low-rank
  basis plus an isotropic residual r_y carrying the variance the basis leaves out. It stands in
  for the full D x D covariance, which would not fit in a small checkpoint.
* **local class PCA** (our reading of DER's local class-wise PCA): a *mixture* of local PCAs.
  Each class is split by k-means into ``clusters`` clusters (in pixel space or the model's
  penultimate features); each cluster stores its mean, its leading ``local_components``
  principal directions and their stds, and its share of the class. Sampling picks a cluster by
  that share and draws mean + sum_i a_i s_i U_i. Every stored centre is the mean of at least
  ``min_cluster_size`` training images, so no start is a training image and the checkpoint
  stores none (an earlier version centred local PCAs on stored training images and its samples
  were near-copies of them).

The prior also stores the class reference energies E_y, the mean joint energy of real class-y
training images under the same model, and their spread sigma_y (the std over those images):
energy guidance aims at E_y and adaptive stopping measures its tolerance in units of sigma_y.
Bases and local means are stored as float16 (values in [-1, 1] and [0, 1]; the round-off is
below 1e-3, far under a pixel's 1/255), the rest as float32.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

INITS = ("pca", "gaussian", "local_pca", "uniform")
CLUSTER_SPACES = ("pixel", "features")
# Keys of the retired anchor-centred local prior (it stored training images): a checkpoint
# whose prior config has them loads without its prior and asks for a refit.
LEGACY_PRIOR_KEYS = frozenset({"anchors", "neighbours", "neighbour_space"})


@dataclass(frozen=True)
class PriorShape:
    """The sizes of a stored prior: JSON-able, kept in the checkpoint's config."""

    components: int = 64
    clusters: int = 24
    local_components: int = 8
    min_cluster_size: int = 20
    retained_variance: float = 0.95
    cluster_space: str = "pixel"  # or "features": the model's penultimate features

    def __post_init__(self) -> None:
        for name in ("components", "clusters", "local_components", "min_cluster_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.min_cluster_size < 2:
            # A one-image cluster's mean is that training image: the copy we must not store.
            raise ValueError(f"min_cluster_size must be at least 2, got {self.min_cluster_size}")
        if not 0 < self.retained_variance <= 1:
            raise ValueError(f"retained_variance must be in (0, 1], got {self.retained_variance}")
        if self.cluster_space not in CLUSTER_SPACES:
            raise ValueError(
                f"cluster_space is one of {CLUSTER_SPACES}, got {self.cluster_space!r}"
            )

    @classmethod
    def from_dict(cls, values: dict) -> PriorShape:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"prior config has unknown keys {unknown}; known: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def kmeans(
    points: torch.Tensor,
    clusters: int,
    min_size: int,
    generator: torch.Generator,
    iterations: int = 25,
) -> torch.Tensor:
    """Cluster labels (N,) from k-means++ seeding and Lloyd steps; every cluster has >= min_size.

    A cluster that falls under ``min_size`` members is dissolved and its points join their next
    nearest centre, so the number of clusters can come out below ``clusters`` (and is at most
    N // min_size). Labels are renumbered 0..C-1.
    """
    points = points.float()  # float32 distances: the clustering needs no more, and is 3x faster
    n = len(points)
    k = max(1, min(clusters, n // min_size))
    centres = points[torch.randint(n, (1,), generator=generator)]
    for _ in range(1, k):  # k-means++: the next centre is drawn in proportion to squared distance
        d2 = torch.cdist(points, centres).min(1).values.pow(2)
        if d2.sum() <= 0:
            break
        pick = torch.multinomial((d2 / d2.sum()).float(), 1, generator=generator)
        centres = torch.cat([centres, points[pick]])
    alive = torch.ones(len(centres), dtype=torch.bool)
    labels = _lloyd(points, centres, alive, iterations)
    while True:  # dissolve undersized clusters one at a time, letting the others adapt
        labels, small = _assign(points, centres, alive, min_size)
        if small is None:
            break
        alive[small] = False
        labels = _lloyd(points, centres, alive, max(3, iterations // 5))
    _, labels = torch.unique(labels, return_inverse=True)
    return labels


def _lloyd(
    points: torch.Tensor, centres: torch.Tensor, alive: torch.Tensor, iterations: int
) -> torch.Tensor:
    """Lloyd steps on the live centres (updated in place) until the assignment is stable."""
    labels = torch.full((len(points),), -1, dtype=torch.long)
    for _ in range(iterations):
        new, _ = _assign(points, centres, alive, 0)
        if torch.equal(new, labels):
            break
        labels = new
        for c in torch.nonzero(alive).flatten():
            members = points[labels == c]
            if len(members):  # an emptied centre stays where it is
                centres[c] = members.mean(0)
    return labels


def _assign(
    points: torch.Tensor, centres: torch.Tensor, alive: torch.Tensor, min_size: int
) -> tuple[torch.Tensor, int | None]:
    """Nearest live centre of each point, and the smallest live cluster under min_size (or None)."""
    distances = torch.cdist(points, centres)
    distances[:, ~alive] = float("inf")
    labels = distances.argmin(1)
    counts = torch.bincount(labels, minlength=len(centres))
    small = alive & (counts < min_size)
    if not small.any() or int(alive.sum()) == 1:
        return labels, None
    return labels, int(torch.where(small, counts, len(points) + 1).argmin())


class ClassPrior(nn.Module):
    """The buffers of all three priors for K classes of D-pixel images."""

    def __init__(self, num_classes: int, dim: int, shape: PriorShape) -> None:
        super().__init__()
        k, d, c = num_classes, dim, shape.components
        m, l = shape.clusters, shape.local_components
        self.shape = shape
        self.register_buffer("class_mean", torch.zeros(k, d))
        self.register_buffer("class_basis", torch.zeros(k, c, d, dtype=torch.float16))
        self.register_buffer("class_std", torch.zeros(k, c))
        self.register_buffer("residual_std", torch.zeros(k))
        self.register_buffer("local_mean", torch.zeros(k, m, d, dtype=torch.float16))
        self.register_buffer("local_basis", torch.zeros(k, m, l, d, dtype=torch.float16))
        self.register_buffer("local_std", torch.zeros(k, m, l))
        self.register_buffer("local_weight", torch.zeros(k, m))  # a cluster's share of its class
        self.register_buffer("reference_energy", torch.zeros(k))
        self.register_buffer("reference_energy_std", torch.zeros(k))

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
        cluster_features: torch.Tensor | None = None,
        seed: int = 0,
    ) -> None:
        """Fit every prior from training ``images`` (N, D) in [0, 1] and ``labels`` (N,).

        ``cluster_features`` (N, F) replaces pixels for the k-means of the local prior (the
        model's penultimate features, when ``cluster_space="features"``).
        """
        generator = torch.Generator().manual_seed(seed)
        images = images.reshape(len(images), -1).double()
        need = self.shape.min_cluster_size
        for y in range(self.num_classes):
            members = images[labels == y]
            if len(members) < need:
                raise ValueError(
                    f"class {y} has {len(members)} training images; the prior needs at least "
                    f"min_cluster_size = {need}"
                )
            self._fit_class(y, members)
            space = members if cluster_features is None else cluster_features[labels == y]
            self._fit_local(y, members, space.double(), generator)

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
        self, y: int, members: torch.Tensor, space: torch.Tensor, generator: torch.Generator
    ) -> None:
        shape = self.shape
        assignment = kmeans(space, shape.clusters, shape.min_cluster_size, generator)
        self.local_mean[y].zero_()
        self.local_basis[y].zero_()
        self.local_std[y].zero_()
        self.local_weight[y].zero_()
        for slot in range(int(assignment.max()) + 1):
            cluster = members[assignment == slot]
            mean = cluster.mean(0)
            _, singular, vt = torch.linalg.svd(cluster - mean, full_matrices=False)
            keep = min(shape.local_components, len(singular))
            self.local_mean[y, slot] = mean.half()
            self.local_basis[y, slot, :keep] = vt[:keep].half()
            self.local_std[y, slot, :keep] = (singular[:keep] / (len(cluster) - 1) ** 0.5).float()
            self.local_weight[y, slot] = len(cluster) / len(members)

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

        if init == "uniform":  # the JEM-style start that fails for robust classifiers
            return torch.rand(n, d, generator=generator).to(device)
        if init == "local_pca":
            weights = self.local_weight[labels].cpu()
            if (weights.sum(1) <= 0).any():
                raise ValueError("the local PCA prior is empty for a requested class: refit it")
            slot = torch.multinomial(weights, 1, generator=generator).flatten().to(device)
            centre = self.local_mean[labels, slot].float()
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
