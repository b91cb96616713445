"""Adversarial training losses: PGD-AT, TRADES, WEAT_adv, WEAT_nat, single-step AT, and DER.

Each loss runs the attack its method defines and returns a ``LossOutput`` that keeps the
natural and adversarial logits, so the DER regulariser (and the trainer's delta-energy
diagnostics) reuse them instead of paying for another attack (docs/methods.md 3.3, 5.7).

Conventions (docs/methods.md 1.2, 2.2-2.5, 5.2-5.4):
* the attack runs with BatchNorm in eval mode (``hubmodels.attacks``), the loss in train mode;
* TRADES keeps gradients through the natural softmax of the KL term;
* the WEAT weight 1/softplus(|E(x)|) comes from the natural train-mode logits, detached, and the
  weighted batch loss is divided by B, not by the sum of weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hubmodels import attacks
from hubmodels.energy import delta_energy, weat_weight
from hubmodels.registry import Registry


@dataclass(frozen=True)
class AttackSettings:
    """The training attack. Epsilon and alpha are on the [0, 1] pixel scale."""

    norm: str = "linf"
    eps: float = 8 / 255
    alpha: float = 2 / 255
    steps: int = 10
    bn: str = "eval"  # BatchNorm during single-step attacks: "eval" or "train" (batch statistics)


@dataclass
class LossOutput:
    """A training loss and what it computed on the way (for DER and the diagnostics)."""

    loss: torch.Tensor
    logits_adv: torch.Tensor | None  # train-mode logits of x*, None for standard training
    logits_nat: torch.Tensor | None  # train-mode logits of x, None where the method skips them
    x_adv: torch.Tensor | None


LossFn = Callable[..., LossOutput]

AttackFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
SINGLE_STEP = ("fgsm", "rs_fgsm", "n_fgsm")
KL_METHODS = ("trades", "weat_adv", "weat_nat")
WEAT_METHODS = ("weat_adv", "weat_nat")
# What WEAT's weighted sum is divided by: B (the paper's code) or the sum of the weights.
WEAT_REDUCTIONS = ("batch", "weights")


def training_attack(method: str, attack: AttackSettings) -> AttackFn:
    """The adversary of ``method``: what its loss trains on, and what the trainer's dE
    diagnostics measure (docs/methods.md 3.4). TRADES-family methods use the KL-PGD of TRADES, the
    FGSM family its single step, and PGD-AT (and, for diagnostics, standard training) CE-PGD.
    """
    if method in SINGLE_STEP:
        single_step = attacks.ATTACKS[method]
        in_train_mode = attack.bn == "train"
        return lambda model, x, y: single_step(
            model, x, y, eps=attack.eps, in_train_mode=in_train_mode
        )
    loss = "kl" if method in KL_METHODS else "ce"
    return lambda model, x, y: attacks.pgd(
        model,
        x,
        y,
        eps=attack.eps,
        alpha=attack.alpha,
        steps=attack.steps,
        norm=attack.norm,
        loss=loss,
    )


def standard_loss(
    model: nn.Module, x, y, attack: AttackSettings, *, label_smoothing: float = 0.0, **_
) -> LossOutput:
    """Plain cross-entropy on natural images: the non-robust reference."""
    logits = model(x)
    return LossOutput(
        F.cross_entropy(logits, y, label_smoothing=label_smoothing), None, logits, None
    )


def pgd_at_loss(
    model: nn.Module,
    x,
    y,
    attack: AttackSettings,
    *,
    attack_model: nn.Module | None = None,
    label_smoothing: float = 0.0,
    **_,
) -> LossOutput:
    """PGD-AT (Madry et al. 2018): CE on a multi-step CE-PGD adversarial, uniform start.

    ``label_smoothing`` (Szegedy et al. 2016) mixes the one-hot target with the uniform one; the
    attack still maximises the plain CE. It is our control for DER's confidence effect.
    """
    x_adv = training_attack("pgd_at", attack)(attack_model or model, x, y)
    logits_adv = model(x_adv)
    loss = F.cross_entropy(logits_adv, y, label_smoothing=label_smoothing)
    return LossOutput(loss, logits_adv, None, x_adv)


def _single_step(name: str) -> LossFn:
    """FGSM-family AT (Goodfellow 2015, Wong et al. 2020, de Jorge et al. 2022): CE on x*."""

    def loss(
        model, x, y, attack: AttackSettings, *, attack_model=None, label_smoothing=0.0, **_
    ) -> LossOutput:
        x_adv = training_attack(name, attack)(attack_model or model, x, y)
        logits_adv = model(x_adv)
        loss = F.cross_entropy(logits_adv, y, label_smoothing=label_smoothing)
        return LossOutput(loss, logits_adv, None, x_adv)

    loss.__name__ = f"{name}_loss"
    loss.__doc__ = f"{name.upper()} adversarial training: cross-entropy on its adversarial."
    return loss


def _kl_rows(logits_nat: torch.Tensor, logits_adv: torch.Tensor) -> torch.Tensor:
    """Per-sample KL(p(.|x) || p(.|x*)) with gradient through both sides (TRADES, 1.2)."""
    p = F.softmax(logits_nat, dim=1)
    # The 1e-12 inside the log of q follows the WEAT code (docs/methods.md 2.3).
    log_q = torch.log(F.softmax(logits_adv, dim=1) + 1e-12)
    return (p * (F.log_softmax(logits_nat, dim=1) - log_q)).sum(dim=1)


def _trades_family(model, x, y, attack, attack_model) -> tuple[torch.Tensor, ...]:
    """TRADES inner maximisation (KL-PGD from x + 0.001 N(0, I)) and both train-mode passes."""
    x_adv = training_attack("trades", attack)(attack_model or model, x, y)
    return x_adv, model(x), model(x_adv)


def trades_loss(
    model, x, y, attack: AttackSettings, *, beta: float = 6.0, attack_model=None, **_
) -> LossOutput:
    """TRADES (Zhang et al. 2019; docs/methods.md 1.2): CE(f(x), y) + beta * KL(p(.|x), p(.|x*))."""
    x_adv, logits_nat, logits_adv = _trades_family(model, x, y, attack, attack_model)
    loss = F.cross_entropy(logits_nat, y) + beta * _kl_rows(logits_nat, logits_adv).mean()
    return LossOutput(loss, logits_adv, logits_nat, x_adv)


def _weat(
    model, x, y, attack, beta, attack_model, ce_on_adversarial: bool, reduction: str
) -> LossOutput:
    """sum_i w(x_i) [CE(f(x'_i), y_i) + beta KL_i] / Z, x' = x* (WEAT_adv) or x (WEAT_nat).

    Z = B (``reduction="batch"``, WEAT's code) or sum_i w(x_i) (``"weights"``). With weights of
    about 0.17, Z = B makes the effective learning rate about 6x smaller than TRADES's at the
    same lr (docs/methods.md 2.2); Z = sum w keeps WEAT's reweighting and TRADES's step size.
    """
    x_adv, logits_nat, logits_adv = _trades_family(model, x, y, attack, attack_model)
    ce_logits = logits_adv if ce_on_adversarial else logits_nat
    per_sample = F.cross_entropy(ce_logits, y, reduction="none")
    per_sample = per_sample + beta * _kl_rows(logits_nat, logits_adv)
    weights = weat_weight(logits_nat)  # detached: a weight, not a path for the gradient
    if reduction == "batch":
        normaliser = x.shape[0]
    elif reduction == "weights":
        normaliser = weights.sum()
    else:
        raise ValueError(f"unknown WEAT reduction {reduction!r}; choose one of {WEAT_REDUCTIONS}")
    loss = (weights * per_sample).sum() / normaliser
    return LossOutput(loss, logits_adv, logits_nat, x_adv)


def weat_adv_loss(
    model,
    x,
    y,
    attack: AttackSettings,
    *,
    beta: float = 6.0,
    weat_reduction: str = "batch",
    attack_model=None,
    **_,
) -> LossOutput:
    """WEAT_adv (docs/methods.md 2.3): sum_i w(x_i) [CE(f(x*_i), y_i) + beta KL_i] / B
    (/ sum_i w(x_i) with ``weat_reduction="weights"``)."""
    return _weat(
        model, x, y, attack, beta, attack_model, ce_on_adversarial=True, reduction=weat_reduction
    )


def weat_nat_loss(
    model,
    x,
    y,
    attack: AttackSettings,
    *,
    beta: float = 6.0,
    weat_reduction: str = "batch",
    attack_model=None,
    **_,
) -> LossOutput:
    """WEAT_nat (docs/methods.md 2.3): sum_i w(x_i) [CE(f(x_i), y_i) + beta KL_i] / B
    (/ sum_i w(x_i) with ``weat_reduction="weights"``)."""
    return _weat(
        model, x, y, attack, beta, attack_model, ce_on_adversarial=False, reduction=weat_reduction
    )


LOSSES = Registry(
    "training method",
    {
        "standard": standard_loss,
        "pgd_at": pgd_at_loss,
        "trades": trades_loss,
        "weat_adv": weat_adv_loss,
        "weat_nat": weat_nat_loss,
        "fgsm": _single_step("fgsm"),
        "rs_fgsm": _single_step("rs_fgsm"),
        "n_fgsm": _single_step("n_fgsm"),
    },
)

# Methods whose loss is one cross-entropy on hard labels, the ones label smoothing applies to.
CE_METHODS = ("standard", "pgd_at", *SINGLE_STEP)
DER_FORMS = ("squared", "absolute", "joint", "hinge", "relative")
# Where the DER gap is measured: at the method's own adversarial, a uniform point of the eps-ball
# (for L-inf the RS-FGSM start), or a short CE-PGD point (2 steps of eps/2 from a uniform start).
DER_POINTS = ("adversarial", "uniform", "pgd2")
RELATIVE_FLOOR = 1e-3  # the relative form's smallest logit spread: no division by ~0


def der_penalty(
    logits_nat: torch.Tensor,
    logits_adv: torch.Tensor,
    y: torch.Tensor,
    form: str = "joint",
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Delta Energy Regulariser, (1/B) sum_i r(dE_i), docs/methods.md 3.3 (all forms are [P]).

    * "squared":  (E(x) - E(x*))^2                      (a; the default until December 2026)
    * "absolute": |E(x) - E(x*)|                         (b, robust to outliers)
    * "joint":    (dE(x))^2 + (dE(x, y))^2               (c, the default: the one form that
      prevented robust overfitting in both seeds and, measured at a 2-step PGD point, the
      catastrophic collapse of FGSM; docs/experiments.md)
    * "hinge":    max(0, -dE(x))^2                       (d, only the robust-overfitting sign)
    * "relative": dE(x)^2 on logits divided by s = sg(std_k f(x)_k), the natural logits'
      spread over classes, for x and x* alike (scale-free: multiplying the logits by any c
      leaves it unchanged, so shrinking them cannot meet it, as it meets the squared form)
    Gradients flow through both energies (not through the detached sg(.) scale): the penalty
    shrinks the gap instead of moving one side. ``weights`` (e.g. detached WEAT weights) scale
    each sample's term.
    """
    if form == "relative":
        scale = logits_nat.detach().std(dim=1, keepdim=True).clamp_min(RELATIVE_FLOOR)
        logits_nat, logits_adv = logits_nat / scale, logits_adv / scale
    d = delta_energy(logits_nat, logits_adv)
    if form in ("squared", "relative"):
        per_sample = d.pow(2)
    elif form == "absolute":
        per_sample = d.abs()
    elif form == "joint":
        per_sample = d.pow(2) + delta_energy(logits_nat, logits_adv, y).pow(2)
    elif form == "hinge":
        per_sample = F.relu(-d).pow(2)
    else:
        raise ValueError(f"unknown DER form {form!r}; choose one of {DER_FORMS}")
    if weights is not None:
        per_sample = weights * per_sample
    return per_sample.mean()


def der_point(
    point: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: AttackSettings
) -> torch.Tensor:
    """The point x' at which DER measures E(x) - E(x') when it is not the adversarial."""
    ball = attacks.BALLS[attack.norm]
    if point == "uniform":
        with torch.no_grad():
            return ball.projector(x, attack.eps)(x + ball.uniform_start(x, attack.eps, None))
    if point == "pgd2":
        return attacks.pgd(
            model, x, y, eps=attack.eps, alpha=attack.eps / 2, steps=2, norm=attack.norm
        )
    raise ValueError(f"unknown DER point {point!r}; choose one of {DER_POINTS}")


def training_loss(
    method: str,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: AttackSettings,
    *,
    beta: float = 6.0,
    weat_reduction: str = "batch",
    der_lambda: float = 0.0,
    der_form: str = "joint",
    der_weighted: bool = False,
    der_at: str = "adversarial",
    attack_model: nn.Module | None = None,
    label_smoothing: float = 0.0,
) -> LossOutput:
    """The base loss of ``method`` plus, when ``der_lambda > 0``, lambda times the DER penalty.

    At ``der_at="adversarial"`` DER reuses the base method's adversarial. Methods whose loss
    never looks at natural images (PGD-AT, FGSM family) get one extra train-mode forward of x,
    which costs one forward/backward, not an attack. Another ``der_at`` (``DER_POINTS``) costs
    one more forward (and, for "pgd2", two attack steps).
    """
    if label_smoothing and method not in CE_METHODS:
        raise ValueError(f"label smoothing applies to {CE_METHODS}, not {method!r}")
    out = LOSSES.lookup(method)(
        model,
        x,
        y,
        attack,
        beta=beta,
        weat_reduction=weat_reduction,
        attack_model=attack_model,
        label_smoothing=label_smoothing,
    )
    if der_lambda > 0:
        if out.logits_adv is None:
            raise ValueError("DER needs an adversarial: combine it with an adversarial method")
        if out.logits_nat is None:
            out.logits_nat = model(x)
        logits_far = out.logits_adv
        if der_at != "adversarial":
            logits_far = model(der_point(der_at, attack_model or model, x, y, attack))
        weights = weat_weight(out.logits_nat) if der_weighted else None
        penalty = der_penalty(out.logits_nat, logits_far, y, der_form, weights)
        out.loss = out.loss + der_lambda * penalty
    return out
