"""The shared vocabulary: a classifier read as an energy-based model.

Every energy in the project comes from this file (docs/methods.md 1.1, 2.2, 3.3):

* marginal energy   E(x)   = -logsumexp_k f(x)[k]              (JEM reading, WEAT eq. 1)
* joint energy      E(x,y) = -f(x)[y]
* delta energy      dE     = E(natural) - E(adversarial)       (WEAT sec. 3, DER)
* WEAT weight       w(x)   = 1 / softplus(|E(x)|)             (WEAT eq. 9)

Functions take logits, not models, so training, sampling and inversion share them without
extra forward passes. Sign conventions matter: under robust overfitting dE(x) drifts negative
(natural points become over-confident), which the trainer's alarm and the plots rely on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def marginal_energy(logits: torch.Tensor) -> torch.Tensor:
    """E(x) = -logsumexp(f(x)), one value per row of ``logits`` (N, K) -> (N,)."""
    return -torch.logsumexp(logits, dim=-1)


def joint_energy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """E(x, y) = -f(x)[y] for integer labels ``y`` (N,) -> (N,)."""
    return -logits.gather(-1, y.long().view(-1, 1)).squeeze(-1)


def energy(logits: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Marginal energy when ``y`` is None, joint energy otherwise."""
    return marginal_energy(logits) if y is None else joint_energy(logits, y)


def delta_energy(
    logits_nat: torch.Tensor, logits_adv: torch.Tensor, y: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-sample dE = E(x) - E(x*) (or the joint version with ``y``), docs/methods.md 1.1.

    Negative values mean the natural point has lower energy (is more "in distribution" for the
    model) than its adversarial counterpart; WEAT links a sharp negative drift to robust
    overfitting and DER links divergence in either direction to catastrophic overfitting.
    """
    return energy(logits_nat, y) - energy(logits_adv, y)


def weat_weight(logits_nat: torch.Tensor) -> torch.Tensor:
    """WEAT sample weight w(x) = 1 / softplus(|E(x)|), detached (WEAT eq. 9, docs/methods.md 2.2).

    Computed from the *natural* logits of the training forward pass. Detached so the network
    cannot lower its loss by moving energies; high-energy (uncertain) samples weigh more.
    E = 0 gives 1/log 2 = 1.443; for large |E| the weight is about 1/|E|.
    """
    return 1.0 / F.softplus(marginal_energy(logits_nat.detach()).abs())
