"""Out-of-distribution detection by energy (Liu et al. 2020): how well -E(x) separates a
model's own test data from inputs it was never meant to see.

* **AUROC**: the probability that a random in-distribution input scores higher than a random
  out-of-distribution one (1.0: perfect separation, 0.5: chance), with in-distribution as the
  positive class; torchmetrics computes it.
* **FPR@95**: the share of out-of-distribution inputs still accepted when the threshold keeps
  95 % of in-distribution inputs (lower is better). ``threshold`` lets a caller use the one a
  checkpoint stores instead of re-deriving it from ``in_scores``.
"""

from __future__ import annotations

import torch
from torchmetrics.functional.classification import binary_auroc

__all__ = ["fpr_at_tpr", "ood_auroc"]


def ood_auroc(in_scores: torch.Tensor, out_scores: torch.Tensor) -> float:
    """AUROC of scores (higher = in-distribution) for in- (N,) against out-of-distribution (M,)."""
    in_scores, out_scores = _checked(in_scores, out_scores)
    scores = torch.cat([in_scores, out_scores])
    labels = torch.cat([torch.ones(len(in_scores)), torch.zeros(len(out_scores))]).long()
    return float(binary_auroc(scores, labels))


def fpr_at_tpr(
    in_scores: torch.Tensor,
    out_scores: torch.Tensor,
    tpr: float = 0.95,
    threshold: float | None = None,
) -> float:
    """Share of out-of-distribution scores at or above the threshold that keeps ``tpr`` of the
    in-distribution scores (the ``1 - tpr`` quantile of ``in_scores``, or ``threshold``)."""
    in_scores, out_scores = _checked(in_scores, out_scores)
    if not 0 < tpr < 1:
        raise ValueError(f"tpr must be in (0, 1), got {tpr}")
    if threshold is None:
        threshold = float(torch.quantile(in_scores, 1 - tpr))
    return float((out_scores >= threshold).double().mean())


def _checked(in_scores: torch.Tensor, out_scores: torch.Tensor) -> tuple[torch.Tensor, ...]:
    in_scores, out_scores = (s.detach().double().flatten().cpu() for s in (in_scores, out_scores))
    if len(in_scores) == 0 or len(out_scores) == 0:
        raise ValueError("both score sets need at least one value")
    if not (torch.isfinite(in_scores).all() and torch.isfinite(out_scores).all()):
        raise ValueError("scores contain NaN or inf")
    return in_scores, out_scores
