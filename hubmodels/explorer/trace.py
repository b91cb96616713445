"""An attack, step by step, in energies: what the explorer streams (docs/energy_explorer.md).

WEAT (sec. 2.1) observes that untargeted attacks lower the marginal energy E(x) of a standard
classifier while targeted attacks raise it, and that both raise the joint energy E(x, y) of the
true class; adversarial training flattens these shifts. ``attack_trace`` runs the project's PGD
(``hubmodels.attacks.pgd``) from the clean image (no random start, so step 0 is the input) and
records, after every step, the image and its energies, so a plot or a notebook can replay it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from hubmodels import attacks
from hubmodels.energy import joint_energy, marginal_energy


@dataclass
class AttackStep:
    """The state after ``step`` PGD steps (step 0: the clean input); tensors on the CPU.

    Attributes:
        step: how many gradient steps have been taken.
        images: the adversarial images (N, C, H, W) in [0, 1].
        perturbation: images minus the clean input, (N, C, H, W).
        marginal: E(x*) (N,).
        joint: E(x*, y) of the true class y (N,).
        target_joint: E(x*, t) of the target class for a targeted attack, else None.
        prediction: the predicted class (N,).
    """

    step: int
    images: torch.Tensor
    perturbation: torch.Tensor
    marginal: torch.Tensor
    joint: torch.Tensor
    target_joint: torch.Tensor | None
    prediction: torch.Tensor


def attack_trace(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    steps: int = 20,
    alpha: float | None = None,
    norm: str = "linf",
    target: torch.Tensor | None = None,
    callback: Callable[[AttackStep], None] | None = None,
) -> list[AttackStep]:
    """PGD on ``x`` with labels ``y`` (N,), untargeted or towards ``target`` (N,), traced.

    Args:
        eps: the radius on the [0, 1] scale (e.g. the model's threat-model epsilon).
        steps: PGD steps (1 to 1,000).
        alpha: the step size; eps / 4 by default, as in our evaluations.
        norm: "linf" or "l2".
        target: target classes for a targeted attack (minimises CE towards them).
        callback: receives each ``AttackStep`` as soon as it exists, for live plots.

    Returns:
        ``steps + 1`` records, the clean input first.
    """
    if not isinstance(steps, int) or not 1 <= steps <= 1000:
        raise ValueError(f"steps must be a whole number in [1, 1000], got {steps!r}")
    if not torch.isfinite(x).all():
        raise ValueError("the input contains NaN or inf values")
    x, y = x.detach(), y.long()
    alpha = eps / 4 if alpha is None else alpha
    trace: list[AttackStep] = []

    def record(step: int, images: torch.Tensor) -> None:
        with torch.no_grad(), attacks.eval_mode(model):
            logits = model(images).double()
        images = images.detach().cpu()
        entry = AttackStep(
            step=step,
            images=images,
            perturbation=images - x.cpu(),
            marginal=marginal_energy(logits).cpu(),
            joint=joint_energy(logits, y).cpu(),
            target_joint=None if target is None else joint_energy(logits, target).cpu(),
            prediction=logits.argmax(dim=1).cpu(),
        )
        trace.append(entry)
        if callback is not None:
            callback(entry)

    record(0, x)
    attacks.pgd(
        model,
        x,
        y,
        eps=eps,
        alpha=alpha,
        steps=steps,
        norm=norm,
        loss="ce" if target is None else "targeted",
        target=target,
        random_start="zero",
        callback=lambda step, images: record(step, images),
    )
    return trace
