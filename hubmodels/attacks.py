"""Adversarial attacks on classifiers that take x in [0, 1] and return logits.

One file for every attack the project trains or evaluates with (docs/methods.md 1.2, 2.4, 3.4):

* ``pgd``     projected gradient descent, L-inf or L2, on cross-entropy (Madry et al. 2018),
              on the TRADES KL (Zhang et al. 2019, the inner maximisation of docs/methods.md 1.2),
              or targeted; with random restarts that keep the worst case per sample.
* ``fgsm``    one signed step of size eps from x (Goodfellow et al. 2015).
* ``rs_fgsm`` uniform start in the eps-ball, step 1.25 eps, projection (Wong et al. 2020).
* ``n_fgsm``  uniform noise of size 2 eps, step eps, no projection (de Jorge et al. 2022).

Conventions shared by all of them:

* eps and step sizes are on the [0, 1] pixel scale; normalisation lives inside the model.
* The model runs in eval mode (BatchNorm on running statistics, as the TRADES/WEAT code does
  during the attack) and comes back in the exact train/eval state it had, module by module.
* Gradients are taken with ``torch.autograd.grad`` with respect to the input only, so
  parameter ``.grad`` is never touched and ``requires_grad`` flags are left alone. Under DDP,
  pass the unwrapped module (``accelerator.unwrap_model``): the attack needs no gradient sync.
* Each step costs exactly one forward and one backward; projections run under ``no_grad``.
* The result is a detached tensor with the dtype and device of ``x``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from hubmodels.registry import Registry

__all__ = [
    "ATTACKS",
    "BALLS",
    "L2Ball",
    "LinfBall",
    "NormBall",
    "eval_mode",
    "fgsm",
    "n_fgsm",
    "pgd",
    "rs_fgsm",
    "train_mode",
]

LOSSES = ("ce", "kl", "targeted")
RANDOM_STARTS = ("uniform", "normal", "zero")

# TRADES starts its inner maximisation from x + 0.001 * N(0, I) (docs/methods.md 1.2, step 1).
TRADES_INIT_STD = 0.001
# Inputs may carry float noise from a normalise/denormalise round trip; more than this is a
# caller bug (e.g. passing 0-255 images or already-normalised tensors).
RANGE_TOL = 1e-6

Objective = Callable[[torch.Tensor], torch.Tensor]


@contextmanager
def _in_mode(model: nn.Module, training: bool) -> Iterator[nn.Module]:
    """Set every submodule's ``training`` flag; restore each one's own flag on exit, not just
    the root's, so a model with deliberately frozen (eval) parts comes back unchanged;
    restoration happens even if the body raises."""
    saved = [(module, module.training) for module in model.modules()]
    model.train(training)
    try:
        yield model
    finally:
        for module, flag in saved:
            module.training = flag


def eval_mode(model: nn.Module) -> AbstractContextManager[nn.Module]:
    """Put every submodule of ``model`` in eval mode, restoring each one's flag on exit.

    Attacks use BatchNorm running statistics and no dropout (docs/methods.md 1.2, "during the
    attack the model is in eval mode"), so the attack neither depends on the batch it is in
    nor moves the running statistics.
    """
    return _in_mode(model, False)


def train_mode(model: nn.Module) -> AbstractContextManager[nn.Module]:
    """Put every submodule in train mode (BatchNorm on the batch's statistics, which each
    forward also folds into the running ones), restoring each one's flag on exit. Single-step
    adversarial training code usually attacks this way (Wong et al. 2020)."""
    return _in_mode(model, True)


# --------------------------------------------------------------------------- validation


def _check_common(x: torch.Tensor, y: torch.Tensor | None, eps: float, name: str) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(
            f"{name}: x must be a floating-point tensor, got {type(x).__name__}"
            + (f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) else "")
        )
    if x.dim() < 2:
        raise ValueError(
            f"{name}: x must have a batch dimension, (N, C, H, W); got {tuple(x.shape)}"
        )
    if not eps >= 0:  # also rejects NaN
        raise ValueError(f"{name}: eps must be >= 0 on the [0, 1] pixel scale, got {eps}")
    if x.numel() > 0:
        lo, hi = x.min().item(), x.max().item()
        if lo < -RANGE_TOL or hi > 1 + RANGE_TOL:
            raise ValueError(
                f"{name}: x must lie in [0, 1] (the model normalises internally); got values in "
                f"[{lo:.4g}, {hi:.4g}]. Pass un-normalised images scaled to [0, 1]."
            )
    if y is not None:
        _check_labels(y, x, "y", name)


def _check_labels(labels: torch.Tensor, x: torch.Tensor, what: str, name: str) -> None:
    if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"{name}: {what} must be an integer (Long) tensor of class indices")
    if labels.shape != (x.shape[0],):
        raise ValueError(
            f"{name}: {what} must have shape (N,) = ({x.shape[0]},) to match x of shape "
            f"{tuple(x.shape)}; got {tuple(labels.shape)}"
        )


def _check_step(alpha: float, name: str) -> None:
    if not alpha >= 0:
        raise ValueError(f"{name}: step size alpha must be >= 0, got {alpha}")


# --------------------------------------------------------------------------- building blocks


def _per_sample(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape a (N,) tensor so it broadcasts against x of shape (N, ...)."""
    return v.view(-1, *([1] * (x.dim() - 1)))


def _l2_norms(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1)


def _uniform(
    x: torch.Tensor, low: float, high: float, generator: torch.Generator | None
) -> torch.Tensor:
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return u * (high - low) + low


def _tiny(x: torch.Tensor) -> float:
    # Smallest normal number of x's dtype: guards divisions by a zero norm without
    # underflowing to 0 in half precision as a literal 1e-12 would.
    return torch.finfo(x.dtype).tiny


class NormBall:
    """What a threat model's norm decides, in one object: where a uniform start lies, how an
    iterate is projected back, and which way a steepest-ascent step goes."""

    name: str

    def uniform_start(
        self, x: torch.Tensor, eps: float, generator: torch.Generator | None
    ) -> torch.Tensor:
        """A random perturbation delta_0 inside the eps-ball (before projection)."""
        raise NotImplementedError

    def projector(self, x: torch.Tensor, eps: float) -> Callable[[torch.Tensor], torch.Tensor]:
        """A map x_adv -> its projection onto the eps-ball around x, clipped to [0, 1].

        Both sets are convex and, for these norms, clipping after projecting lands in their
        intersection.
        """
        raise NotImplementedError

    def steepest_direction(self, grad: torch.Tensor) -> torch.Tensor:
        """The unit-norm direction of steepest ascent for this norm."""
        raise NotImplementedError


class LinfBall(NormBall):
    """L-inf: U(-eps, eps) starts, a box projection, sign steps."""

    name = "linf"

    def uniform_start(self, x, eps, generator):
        return _uniform(x, -eps, eps, generator)

    def projector(self, x, eps):
        # The box and [0, 1] intersect in one box: one clamp against precomputed bounds.
        lower = (x - eps).clamp_(min=0.0)
        upper = (x + eps).clamp_(max=1.0)
        return lambda x_adv: torch.clamp(x_adv, lower, upper)

    def steepest_direction(self, grad):
        return grad.sign()


class L2Ball(NormBall):
    """L2: random-direction starts, a per-sample renorm, unit-gradient steps."""

    name = "l2"

    def uniform_start(self, x, eps, generator):
        # A random direction scaled to a radius drawn uniformly in [0, eps].
        direction = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        direction = direction / _per_sample(_l2_norms(direction).clamp_min(_tiny(x)), x)
        radius = torch.rand(x.shape[0], generator=generator, device=x.device, dtype=x.dtype)
        return direction * _per_sample(radius * eps, x)

    def projector(self, x, eps):
        # Each sample's own delta is rescaled; renorming the whole batch or image
        # (docs/methods.md 2.8 item 6) would let one sample's perturbation shrink another's.
        # Clipping an L2 perturbation to [0, 1] only shrinks its coordinates: it stays inside.
        def project_l2(x_adv: torch.Tensor) -> torch.Tensor:
            delta = x_adv - x
            scale = (eps / _l2_norms(delta).clamp_min(_tiny(x))).clamp_(max=1.0)
            return (x + delta * _per_sample(scale, x)).clamp_(0.0, 1.0)

        return project_l2

    def steepest_direction(self, grad):
        # A sample with a zero gradient simply does not move.
        return grad / _per_sample(_l2_norms(grad).clamp_min(_tiny(grad)), grad)


BALLS: dict[str, NormBall] = {ball.name: ball for ball in (LinfBall(), L2Ball())}
NORMS = tuple(BALLS)


def _random_start(
    x: torch.Tensor, eps: float, ball: NormBall, kind: str, generator: torch.Generator | None
) -> torch.Tensor:
    """The starting perturbation delta_0 (before projection and clipping)."""
    if kind == "zero":
        return torch.zeros_like(x)
    if kind == "normal":
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return TRADES_INIT_STD * noise
    return ball.uniform_start(x, eps, generator)


def _ascend(
    model: nn.Module,
    x_adv: torch.Tensor,
    objective: Objective,
    *,
    alpha: float,
    steps: int,
    ball: NormBall,
    project: Callable[[torch.Tensor], torch.Tensor],
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Run ``steps`` steepest-ascent steps on sum(objective(model(x_adv))), projecting each;
    ``callback(step, x_adv)`` sees every iterate.

    The per-sample objectives are summed, not averaged, so each sample's gradient is the
    gradient of its own loss whatever the batch size (the official TRADES code sums too).
    The step direction is the ball's steepest ascent (L-inf: the sign; L2: the unit gradient).
    """
    for step in range(1, steps + 1):
        x_adv = x_adv.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(objective(model(x_adv)).sum(), x_adv)
        with torch.no_grad():
            x_adv = project(x_adv.detach() + alpha * ball.steepest_direction(grad))
        if callback is not None:
            callback(step, x_adv)
    return x_adv.detach()


@contextmanager
def _attack_context(model: nn.Module, in_train_mode: bool = False) -> Iterator[None]:
    # Gradients must flow even when the caller evaluates under no_grad or inference_mode.
    mode = train_mode(model) if in_train_mode else eval_mode(model)
    with mode, torch.inference_mode(False), torch.enable_grad():
        yield


def _ce_objective(y: torch.Tensor) -> Objective:
    return lambda logits: F.cross_entropy(logits, y, reduction="none")


# --------------------------------------------------------------------------- PGD


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None,
    *,
    eps: float,
    alpha: float,
    steps: int,
    norm: str = "linf",
    loss: str = "ce",
    random_start: str | None = None,
    restarts: int = 1,
    target: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Projected gradient ascent inside the eps-ball around ``x`` (Madry et al. 2018).

    Args:
        model: maps x in [0, 1], (N, C, H, W), to logits (N, K). Run in eval mode and restored.
        x: clean images in [0, 1].
        y: true labels (N,), Long. Required for ``loss="ce"``; may be None for "kl"/"targeted".
        eps: radius of the threat model on the [0, 1] scale (e.g. 8/255 for L-inf).
        alpha: step size on the [0, 1] scale (L-inf: per-pixel step; L2: step length).
        steps: number of gradient steps (each one forward and one backward).
        norm: "linf" (sign steps, box projection) or "l2" (unit-gradient steps, per-sample
            renorm of the perturbation).
        loss: "ce" maximises CE(f(x'), y), the PGD-AT / evaluation attack (docs/methods.md 2.4,
            3.4); "kl" maximises KL(p(.|x) || p(.|x')) with p(.|x) computed once from the clean
            x and held fixed, the TRADES inner maximisation (Zhang et al. 2019; docs/methods.md
            1.2); "targeted" minimises CE(f(x'), target).
        random_start: "uniform" (L-inf: U(-eps, eps) per pixel; L2: random direction with a
            radius uniform in [0, eps]), "normal" (x + 0.001 N(0, I), the TRADES start),
            "zero" (start at x), or None for the usual default: "normal" for "kl", "uniform"
            otherwise. The start is projected and clipped like every iterate.
        restarts: number of independent random starts. Per sample, the result is the worst
            restart: for "ce" a misclassified one first, for "targeted" one predicted as the
            target first, then (and for "kl") the one with the highest loss.
        target: target classes (N,), Long; required for ``loss="targeted"``.
        generator: optional ``torch.Generator`` (on x's device) for the random starts.
        callback: ``callback(step, x_adv)`` after each step (1..steps) with the projected
            iterate, for live views of an attack; only with ``restarts=1``. It runs inside the
            attack (eval mode, gradients on) and must not modify ``x_adv``.

    Returns:
        The adversarial images, detached, same shape/dtype/device as ``x``, inside the eps-ball
        around x and inside [0, 1].

    Raises:
        ValueError: unknown ``norm``/``loss``/``random_start``, negative eps/alpha/steps,
            restarts < 1, x outside [0, 1], label shapes not matching x, "ce" without ``y``
            or "targeted" without ``target``.
    """
    name = "pgd"
    if norm not in NORMS:
        raise ValueError(f"{name}: unknown norm {norm!r}; expected one of {NORMS}")
    if loss not in LOSSES:
        raise ValueError(f"{name}: unknown loss {loss!r}; expected one of {LOSSES}")
    if random_start is not None and random_start not in RANDOM_STARTS:
        raise ValueError(
            f"{name}: unknown random_start {random_start!r}; expected one of {RANDOM_STARTS} "
            "or None (normal for loss='kl', uniform otherwise)"
        )
    _check_common(x, y, eps, name)
    _check_step(alpha, name)
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"{name}: steps must be a non-negative integer, got {steps}")
    if not isinstance(restarts, int) or restarts < 1:
        raise ValueError(f"{name}: restarts must be a positive integer, got {restarts}")
    if loss == "ce" and y is None:
        raise ValueError(f"{name}: loss='ce' needs the true labels y")
    if loss == "targeted":
        if target is None:
            raise ValueError(f"{name}: loss='targeted' needs target= (a LongTensor of shape (N,))")
        _check_labels(target, x, "target", name)
    if callback is not None and restarts != 1:
        raise ValueError(f"{name}: a callback traces one run; it needs restarts=1")
    if random_start is None:
        random_start = "normal" if loss == "kl" else "uniform"

    x = x.detach()
    with _attack_context(model):
        x = x.clone() if x.is_inference() else x  # inference tensors cannot enter autograd
        objective, success = _pgd_objective(model, x, y, loss, target)
        ball = BALLS[norm]
        project = ball.projector(x, eps)

        best = best_loss = best_success = None
        for _ in range(restarts):
            start = project(x + _random_start(x, eps, ball, random_start, generator))
            x_adv = _ascend(
                model,
                start,
                objective,
                alpha=alpha,
                steps=steps,
                ball=ball,
                project=project,
                callback=callback,
            )
            if restarts == 1:
                return x_adv
            # One extra forward per restart scores the final iterate.
            with torch.no_grad():
                logits = model(x_adv)
                adv_loss, adv_success = objective(logits), success(logits)
            if best is None:
                best, best_loss, best_success = x_adv, adv_loss, adv_success
                continue
            better = (adv_success & ~best_success) | (
                (adv_success == best_success) & (adv_loss > best_loss)
            )
            best = torch.where(_per_sample(better, x), x_adv, best)
            best_loss = torch.where(better, adv_loss, best_loss)
            best_success = best_success | adv_success
        return best


def _pgd_objective(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None,
    loss: str,
    target: torch.Tensor | None,
) -> tuple[Objective, Callable[[torch.Tensor], torch.Tensor]]:
    """Per-sample loss to maximise, and the per-sample "attack succeeded" test for restarts."""
    if loss == "ce":
        labels = y.long()
        return _ce_objective(labels), lambda logits: logits.argmax(dim=1) != labels
    if loss == "targeted":
        goal = target.long()
        return (
            lambda logits: -F.cross_entropy(logits, goal, reduction="none"),
            lambda logits: logits.argmax(dim=1) == goal,
        )
    # TRADES: p(.|x) from the clean input, once, held fixed (detached) during the attack.
    with torch.no_grad():
        log_p_clean = F.log_softmax(model(x), dim=1)

    def kl(logits: torch.Tensor) -> torch.Tensor:
        log_q = F.log_softmax(logits, dim=1)
        # log_target avoids 0 * log 0 when p(.|x) underflows for confident models.
        return F.kl_div(log_q, log_p_clean, reduction="none", log_target=True).sum(dim=1)

    return kl, lambda logits: torch.zeros(logits.shape[0], dtype=torch.bool, device=logits.device)


# --------------------------------------------------------------------------- single step


def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    in_train_mode: bool = False,
) -> torch.Tensor:
    """FGSM: x + eps * sign(grad_x CE(f(x), y)), clipped to [0, 1] (Goodfellow et al. 2015).

    The zero-init single-step baseline of the catastrophic-overfitting benchmark
    (docs/methods.md 3.4). Returns detached adversarial images in the eps-ball and in [0, 1].
    ``in_train_mode``: attack with BatchNorm on batch statistics (``train_mode``), as the
    fast-AT code does, instead of eval mode; the same for ``rs_fgsm`` and ``n_fgsm``.
    """
    _check_common(x, y, eps, "fgsm")
    if y is None:
        raise ValueError("fgsm: needs the true labels y")
    x = x.detach()
    with _attack_context(model, in_train_mode):
        x = x.clone() if x.is_inference() else x
        linf = BALLS["linf"]
        project = linf.projector(x, eps)
        objective = _ce_objective(y.long())
        return _ascend(model, x, objective, alpha=eps, steps=1, ball=linf, project=project)


def rs_fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    alpha: float | None = None,
    generator: torch.Generator | None = None,
    in_train_mode: bool = False,
) -> torch.Tensor:
    """RS-FGSM: uniform start in the L-inf eps-ball, one signed step, project (Wong et al. 2020).

    Args:
        eps: L-inf radius on the [0, 1] scale.
        alpha: step size; default 1.25 * eps, the value Wong et al. recommend (docs/methods.md 3.4).
        generator: optional ``torch.Generator`` for the random start.

    The start is clipped to [0, 1] before the gradient is taken, as in the fast-AT code. Returns
    detached adversarial images in the eps-ball and in [0, 1].
    """
    _check_common(x, y, eps, "rs_fgsm")
    if y is None:
        raise ValueError("rs_fgsm: needs the true labels y")
    alpha = 1.25 * eps if alpha is None else alpha
    _check_step(alpha, "rs_fgsm")
    x = x.detach()
    with _attack_context(model, in_train_mode):
        x = x.clone() if x.is_inference() else x
        linf = BALLS["linf"]
        project = linf.projector(x, eps)
        start = project(x + linf.uniform_start(x, eps, generator))
        objective = _ce_objective(y.long())
        return _ascend(model, start, objective, alpha=alpha, steps=1, ball=linf, project=project)


def n_fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    noise: float | None = None,
    alpha: float | None = None,
    generator: torch.Generator | None = None,
    in_train_mode: bool = False,
) -> torch.Tensor:
    """N-FGSM: strong uniform noise, one signed step, no projection (de Jorge et al. 2022).

    Args:
        eps: the nominal L-inf radius on the [0, 1] scale; only sets the defaults below.
        noise: half-width of the uniform start U(-noise, noise); default 2 * eps.
        alpha: step size; default eps (docs/methods.md 3.4).
        generator: optional ``torch.Generator`` for the noise.

    The perturbation is deliberately *not* projected back to the eps-ball (that is what keeps
    N-FGSM from catastrophic overfitting), so ||x' - x||_inf can reach noise + alpha; only the
    image range [0, 1] is enforced, at the start and after the step. Returns detached images.
    """
    _check_common(x, y, eps, "n_fgsm")
    if y is None:
        raise ValueError("n_fgsm: needs the true labels y")
    noise = 2.0 * eps if noise is None else noise
    alpha = eps if alpha is None else alpha
    if not noise >= 0:
        raise ValueError(f"n_fgsm: noise must be >= 0, got {noise}")
    _check_step(alpha, "n_fgsm")
    x = x.detach()
    with _attack_context(model, in_train_mode):
        x = x.clone() if x.is_inference() else x

        def clip(x_adv: torch.Tensor) -> torch.Tensor:
            return x_adv.clamp(0.0, 1.0)

        start = clip(x + _uniform(x, -noise, noise, generator))
        return _ascend(
            model,
            start,
            _ce_objective(y.long()),
            alpha=alpha,
            steps=1,
            ball=BALLS["linf"],
            project=clip,
        )


# The trainer and the CLI look attacks up by name; every entry takes (model, x, y, **options).
ATTACKS = Registry("attack", {"pgd": pgd, "fgsm": fgsm, "rs_fgsm": rs_fgsm, "n_fgsm": n_fgsm})
