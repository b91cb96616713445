"""Per-prompt orthogonal Procrustes and the blending target of CLIP^-1 (docs/methods.md 4.5, 4.6).

The modality gap: a text embedding is not where images of that text embed, so inverting towards
it gives "textual hallucinations". CLIP^-1 inverts towards ``e_t2i = normalise(R e_t)`` instead,
where R is the orthogonal map that best carries the prompt's k nearest text embeddings s_i onto
their paired image embeddings t_i (4.5):

    min_R sum_i ||R s_i - t_i||^2  subject to  R^T R = I
    A = S^T, B = T^T (d x k),  M = B A^T = U Sigma V^T,  R = U V^T

and adds a natural-image prior, the blending loss (4.6):

    w_j = softmax_j(cos(e_t2i, e_img,j) / tau),  e*_img = normalise(sum_j w_j e_img,j)
    L_blend = 1 - cos(e*_i, e*_img)

**Which R.** With k < d pairs, M has rank <= k: the pairs fix R only on their span, and every
choice on the rest is equally optimal. A full d x d SVD picks one arbitrarily (whatever LAPACK
returns for the zero singular values), which would rotate the part of a query outside that span
at random. We solve in the span of both point sets instead (an orthonormal basis Q of
span(s_1..s_k, t_1..t_k), m <= 2k columns), the "k x k SVD" of the paper, and among the optimal
maps take the one closest to the identity:

    R = Q r Q^T + (I - Q Q^T),  r = the optimal m x m rotation nearest to I

R still attains the minimum (M = Q (Q^T M Q) Q^T has the same singular values as the small
problem), leaves every direction orthogonal to the pairs untouched, and costs an m x m SVD
instead of a d x d one. The linear algebra runs in float64 on the CPU: the matrices are tiny,
float64 keeps R orthogonal to ~1e-15, and not every accelerator (MPS) has float64 SVD.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_EPS = 1e-12  # smallest norm we normalise; below it a vector has no direction


def procrustes_rotation(
    source: torch.Tensor, target: torch.Tensor, centre: bool = False
) -> torch.Tensor:
    """The orthogonal ``R`` (d, d) minimising ``sum_i ||R s_i - t_i||^2`` (docs/methods.md 4.5).

    Args:
        source: (k, d) rows s_i, e.g. the neighbours' text embeddings. The caller L2-normalises
            the rows (the bank stores them so); they are not renormalised here.
        target: (k, d) rows t_i, e.g. the paired image embeddings, L2-normalised likewise.
        centre: subtract each set's mean before solving, so R aligns the spreads and the offset
            between the means (the modality gap) is left to a translation that the caller adds
            back; ``procrustes_target(..., centre=True)`` does that.

    With k < d the pairs determine R only on their span; of the equally optimal maps this
    returns the one nearest the identity, which acts as the identity on every direction
    orthogonal to all s_i and t_i. Computed in float64, returned in ``source``'s dtype and
    device.
    """
    _check_pairs(source, target)
    basis, small, _, _ = _factors(source, target, centre)
    d = source.shape[1]
    rotation = (
        torch.eye(d, dtype=torch.float64)
        + basis @ (small - torch.eye(len(small), dtype=torch.float64)) @ basis.T
    )
    return rotation.to(dtype=source.dtype, device=source.device)


def procrustes_target(
    query: torch.Tensor,
    source_neighbours: torch.Tensor,
    target_neighbours: torch.Tensor,
    centre: bool = False,
) -> torch.Tensor:
    """Map a query across the modality gap: ``normalise(R q)`` (docs/methods.md 4.5, step 4).

    Args:
        query: (d,) or (B, d), e.g. the prompt's text embedding e_t. It is L2-normalised first,
            so that it lies on the same sphere as the neighbours.
        source_neighbours: (k, d) L2-normalised rows, the query's neighbours in its own modality.
        target_neighbours: (k, d) L2-normalised rows, their partners in the other modality.
        centre: solve on mean-centred sets and return ``normalise(R (q - mean_s) + mean_t)``.

    Returns a unit vector of the query's shape, dtype and device. R is applied in factored form
    (``q + Q (r - I) Q^T q``), so no d x d matrix is built.
    """
    _check_pairs(source_neighbours, target_neighbours)
    d = source_neighbours.shape[1]
    if query.ndim not in (1, 2) or query.shape[-1] != d:
        raise ValueError(
            f"query must have shape (d,) or (B, d) with d={d} (the neighbours' size), "
            f"got {tuple(query.shape)}"
        )
    _check_finite(query, "query")
    q = _unit(query.detach().to("cpu", torch.float64), "query")
    basis, small, mean_s, mean_t = _factors(source_neighbours, target_neighbours, centre)
    q = q - mean_s
    # Row-vector form of x + Q (r - I) Q^T x, for a (B, d) batch of x.
    mapped = q + (q @ basis) @ (small - torch.eye(len(small), dtype=torch.float64)).T @ basis.T
    mapped = F.normalize(mapped + mean_t, dim=-1, eps=_EPS)
    return mapped.to(dtype=query.dtype, device=query.device)


def blending_weights(
    query: torch.Tensor, neighbours: torch.Tensor, temperature: float = 0.05
) -> torch.Tensor:
    """Softmax weights ``softmax_j(cos(query, n_j) / temperature)``, shape (k,) (methods 4.6).

    Args:
        query: (d,), e.g. e_t2i.
        neighbours: (k, d), e.g. the image embeddings of the prompt's k nearest real images.
        temperature: tau > 0; smaller concentrates the weight on the most similar neighbour.
            cos lies in [-1, 1], so tau = 0.05 spans e^40 between the extremes.

    The weights sum to one and are returned in the query's floating dtype (at least float32).
    """
    _check_temperature(temperature)
    _check_query_neighbours(query, neighbours)
    dtype = torch.promote_types(query.dtype, torch.float32)
    q = F.normalize(query.to(dtype), dim=-1, eps=_EPS)
    n = F.normalize(neighbours.to(device=query.device, dtype=dtype), dim=-1, eps=_EPS)
    return torch.softmax(n @ q / temperature, dim=0)


def blend_target(
    query: torch.Tensor, neighbours: torch.Tensor, temperature: float = 0.05
) -> torch.Tensor:
    """The blending target ``e*_img = normalise(sum_j w_j normalise(n_j))`` (docs/methods.md 4.6).

    ``w`` are the ``blending_weights``. Returns a (d,) unit vector. A constant of the inversion
    (it depends on the prompt and the bank, not on the INR), so the caller computes it once.
    """
    weights = blending_weights(query, neighbours, temperature)
    n = F.normalize(neighbours.to(device=weights.device, dtype=weights.dtype), dim=-1, eps=_EPS)
    return F.normalize(weights @ n, dim=-1, eps=_EPS)


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1 - cos(a, b)`` over the last dimension (docs/methods.md 4.6): 0 aligned, 2 opposite.

    Differentiable; shapes (..., d) broadcast as usual and the result has the broadcast leading
    shape. It is the loss of the inner loop, so it does not check for NaN: that check would
    force a device synchronisation every step.
    """
    if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-1]:
        raise ValueError(
            "cosine_distance needs two (..., d) tensors with the same last size, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    return 1.0 - F.cosine_similarity(a, b, dim=-1, eps=1e-8)


# ------------------------------------------------------------------ internals


def _factors(
    source: torch.Tensor, target: torch.Tensor, centre: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return (Q (d, m), r (m, m), mean_s (d,), mean_t (d,)) with R = Q r Q^T + I - Q Q^T."""
    s = source.detach().to("cpu", torch.float64)
    t = target.detach().to("cpu", torch.float64)
    d = s.shape[1]
    if centre:
        mean_s, mean_t = s.mean(0), t.mean(0)
        s, t = s - mean_s, t - mean_t
    else:
        mean_s = mean_t = torch.zeros(d, dtype=torch.float64)
    # Householder QR: Q is orthonormal even when the 2k columns are dependent (duplicates, or
    # centred sets that sum to zero), and its span contains every s_i and t_i.
    basis = torch.linalg.qr(torch.cat([s, t]).T, mode="reduced").Q  # (d, m), m = min(d, 2k)
    a, b = s @ basis, t @ basis  # (k, m): the pairs in basis coordinates
    u, sigma, vh = torch.linalg.svd(b.T @ a)  # M_small = B A^T, (m, m)
    m = len(sigma)
    tol = sigma.max() * m * torch.finfo(torch.float64).eps
    rank = int((sigma > tol).sum()) if sigma.max() > 0 else 0
    small = u[:, :rank] @ vh[:rank]  # what the pairs determine: R V_rho = U_rho
    if rank < m:
        # On the rest, any orthogonal W between the left and right null spaces is optimal; the
        # one maximising trace(R) (nearest the identity) is itself a little Procrustes problem.
        u_null, v_null = u[:, rank:], vh[rank:].T
        p, _, qh = torch.linalg.svd(v_null.T @ u_null)
        small = small + u_null @ (qh.T @ p.T) @ v_null.T
    return basis, small, mean_s, mean_t


def _check_pairs(source: torch.Tensor, target: torch.Tensor) -> None:
    if not (isinstance(source, torch.Tensor) and isinstance(target, torch.Tensor)):
        raise ValueError("source and target must be tensors")
    if source.ndim != 2 or source.shape != target.shape or 0 in source.shape:
        raise ValueError(
            "source and target must both be (k, d) with k, d >= 1 and the same shape, got "
            f"{tuple(source.shape)} and {tuple(target.shape)}"
        )
    _check_finite(source, "source")
    _check_finite(target, "target")


def _check_query_neighbours(query: torch.Tensor, neighbours: torch.Tensor) -> None:
    if neighbours.ndim != 2 or 0 in neighbours.shape:
        raise ValueError(f"neighbours must be (k, d) with k, d >= 1, got {tuple(neighbours.shape)}")
    if query.ndim != 1 or query.shape[0] != neighbours.shape[1]:
        raise ValueError(
            f"query must be (d,) with d={neighbours.shape[1]} (the neighbours' size), "
            f"got {tuple(query.shape)}"
        )
    _check_finite(query, "query")
    _check_finite(neighbours, "neighbours")


def _check_finite(x: torch.Tensor, name: str) -> None:
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} has non-finite values (NaN/inf)")


def _check_temperature(temperature: float) -> None:
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not math.isfinite(temperature)
        or temperature <= 0
    ):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")


def _unit(x: torch.Tensor, name: str) -> torch.Tensor:
    norm = x.norm(dim=-1, keepdim=True)
    if (norm < _EPS).any():
        raise ValueError(f"{name} has a zero-norm vector: it has no direction to map")
    return x / norm
