"""One input, all its energies: the explorer's reading of a classifier (docs/energy_explorer.md).

For logits f(x) of K classes (WEAT eq. 1; Grathwohl et al. 2020):

* E(x, y) = -f(x)[y] for every class y: the joint energies, one bar per class;
* E(x) = -logsumexp_y f(x)[y]: the marginal energy, lower for inputs the model finds likely;
* p(y | x) = exp(-E(x, y)) / exp(-E(x)): the prediction is the class of lowest joint energy;
* the OOD score -E(x) (Liu et al. 2020), judged against the model's stored threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hubmodels.energy import marginal_energy
from hubmodels.explorer.reference import EnergyReference


@dataclass
class EnergyReport:
    """The energies of N inputs under one model; tensors on the CPU.

    Attributes:
        marginal: E(x), shape (N,).
        joint: E(x, y) for every class, shape (N, K).
        probabilities: p(y | x), shape (N, K).
        prediction: argmax p(y | x), shape (N,).
        ood_score: -E(x), shape (N,): higher means more like the training data.
        ood_threshold: the score above which a share ``tpr`` of real test images lie, or None
            when the model stores no energy reference.
        out_of_distribution: ood_score below ood_threshold, (N,) bool, or None.
        percentile: share of real test images with lower E(x), (N,) in [0, 1], or None.
    """

    marginal: torch.Tensor
    joint: torch.Tensor
    probabilities: torch.Tensor
    prediction: torch.Tensor
    ood_score: torch.Tensor
    ood_threshold: float | None = None
    out_of_distribution: torch.Tensor | None = None
    percentile: torch.Tensor | None = None


@torch.no_grad()
def energy_report(
    model: nn.Module, x: torch.Tensor, reference: EnergyReference | None = None
) -> EnergyReport:
    """Every energy of ``x`` (N, C, H, W) in [0, 1] under ``model`` (logits out).

    ``reference`` (the model's stored ``EnergyReference``) adds the percentile and the OOD
    verdict. Raises ``ValueError`` for a NaN or infinite input, which has no energy.
    """
    if not torch.isfinite(x).all():
        raise ValueError("the input contains NaN or inf values")
    logits = model(x).double().cpu()
    marginal = marginal_energy(logits)
    report = EnergyReport(
        marginal=marginal,
        joint=-logits,
        probabilities=logits.softmax(dim=1),
        prediction=logits.argmax(dim=1),
        ood_score=-marginal,
    )
    if reference is not None and reference.fitted:
        report.ood_threshold = -float(reference.threshold)
        report.out_of_distribution = reference.out_of_distribution(marginal)
        report.percentile = reference.percentile(marginal)
    return report
