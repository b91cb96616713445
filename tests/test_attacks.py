"""Tests for hubmodels.attacks: constraints, objectives, restarts, and model hygiene.

Tiny conv nets with BatchNorm and Dropout, so that running the attack in train mode would be
visible (moved running statistics, stochastic logits). Everything runs on the CPU in seconds.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hubmodels.attacks import ATTACKS, eval_mode, fgsm, n_fgsm, pgd, rs_fgsm

NUM_CLASSES = 5
LINF_EPS, LINF_ALPHA = 8 / 255, 2 / 255
L2_EPS, L2_ALPHA = 0.5, 0.1
TOL = 1e-6


class TinyNet(nn.Module):
    """Conv -> BN -> ReLU -> pool -> dropout -> linear, on (N, 3, 8, 8) images in [0, 1]."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.3),
        )
        self.head = nn.Linear(32, num_classes)
        # Default init gives near-uniform logits that barely react to an 8/255 perturbation;
        # larger head weights make the loss surface steep enough for the tests to see attacks.
        nn.init.normal_(self.head.weight, std=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def make_model(seed: int = 0, dtype: torch.dtype = torch.float32) -> TinyNet:
    """A TinyNet whose BN running statistics are non-trivial, returned in eval mode."""
    torch.manual_seed(seed)
    model = TinyNet().to(dtype)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(32, 3, 8, 8, dtype=dtype))
    return model.eval()


def make_batch(n: int = 16, seed: int = 1, dtype: torch.dtype = torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 8, 8, generator=g).to(dtype)
    y = torch.randint(0, NUM_CLASSES, (n,), generator=g)
    return x, y


@pytest.fixture
def model() -> TinyNet:
    return make_model()


@pytest.fixture
def batch():
    return make_batch()


def logits_of(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with eval_mode(model), torch.no_grad():
        return model(x)


def ce(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits_of(model, x), y, reduction="none")


def kl_to_clean(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    log_p = F.log_softmax(logits_of(model, x), dim=1)
    log_q = F.log_softmax(logits_of(model, x_adv), dim=1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=1)


def assert_in_ball(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str) -> None:
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    delta = (x_adv - x).flatten(1)
    size = delta.abs().amax(dim=1) if norm == "linf" else delta.norm(dim=1)
    assert (size <= eps + TOL).all(), f"{norm} size {size.max().item()} exceeds eps {eps}"


# --------------------------------------------------------------------------- PGD


@pytest.mark.parametrize(
    ("norm", "eps", "alpha"), [("linf", LINF_EPS, LINF_ALPHA), ("l2", L2_EPS, L2_ALPHA)]
)
def test_pgd_raises_cross_entropy(model, batch, norm, eps, alpha):
    x, y = batch
    x_adv = pgd(model, x, y, eps=eps, alpha=alpha, steps=10, norm=norm)
    clean, adv = ce(model, x, y), ce(model, x_adv, y)
    assert (adv > clean).all()
    assert adv.mean() > clean.mean() + 0.1
    assert_in_ball(x_adv, x, eps, norm)


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("loss", ["ce", "kl", "targeted"])
@pytest.mark.parametrize("random_start", [None, "uniform", "normal", "zero"])
def test_pgd_stays_in_ball_and_image_range(model, norm, loss, random_start):
    # Pixels near 0 and 1 make the [0, 1] clip bind as well as the ball.
    x, y = make_batch(8)
    x = torch.where(x > 0.5, (x + 0.45).clamp(max=1), (x - 0.45).clamp(min=0))
    eps, alpha = (LINF_EPS, LINF_ALPHA) if norm == "linf" else (L2_EPS, L2_ALPHA)
    target = (y + 1) % NUM_CLASSES
    x_adv = pgd(
        model,
        x,
        y,
        eps=eps,
        alpha=alpha,
        steps=3,
        norm=norm,
        loss=loss,
        random_start=random_start,
        target=target,
        restarts=2,
    )
    assert_in_ball(x_adv, x, eps, norm)
    assert not x_adv.requires_grad and x_adv.grad_fn is None


def test_pgd_with_zero_steps_returns_projected_start(model, batch):
    x, y = batch
    assert torch.equal(pgd(model, x, y, eps=LINF_EPS, alpha=1.0, steps=0, random_start="zero"), x)
    assert_in_ball(pgd(model, x, y, eps=LINF_EPS, alpha=1.0, steps=0), x, LINF_EPS, "linf")


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_targeted_pgd_moves_towards_target(model, batch, norm):
    x, y = batch
    target = (y + 1) % NUM_CLASSES
    eps, alpha = (0.1, 0.02) if norm == "linf" else (2.0, 0.4)
    x_adv = pgd(
        model, x, y, eps=eps, alpha=alpha, steps=10, norm=norm, loss="targeted", target=target
    )
    assert ce(model, x_adv, target).mean() < ce(model, x, target).mean() - 0.1
    hit_clean = (logits_of(model, x).argmax(1) == target).float().mean()
    hit_adv = (logits_of(model, x_adv).argmax(1) == target).float().mean()
    assert hit_adv > hit_clean
    assert_in_ball(x_adv, x, eps, norm)


def test_targeted_pgd_works_without_true_labels(model, batch):
    x, y = batch
    x_adv = pgd(model, x, None, eps=LINF_EPS, alpha=LINF_ALPHA, steps=2, loss="targeted", target=y)
    assert_in_ball(x_adv, x, LINF_EPS, "linf")


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_kl_attack_beats_clean_point_and_random_noise(model, batch, norm):
    # TRADES inner maximisation (docs/methods.md 1.2): KL(p(.|x) || p(.|x')) is 0 at x' = x.
    x, _ = batch
    eps, alpha = (LINF_EPS, LINF_ALPHA) if norm == "linf" else (L2_EPS, L2_ALPHA)
    x_adv = pgd(model, x, None, eps=eps, alpha=alpha, steps=10, norm=norm, loss="kl")
    kl_adv = kl_to_clean(model, x, x_adv)
    assert kl_to_clean(model, x, x).abs().max() < 1e-6
    assert (kl_adv > 0).all()
    # Also better than a random point of the same ball.
    torch.manual_seed(0)
    x_rand = pgd(
        model, x, None, eps=eps, alpha=0.0, steps=0, norm=norm, loss="kl", random_start="uniform"
    )
    assert kl_adv.mean() > 2 * kl_to_clean(model, x, x_rand).mean()
    assert_in_ball(x_adv, x, eps, norm)


# --------------------------------------------------------------------------- restarts


def _one_restart_at_a_time(model, x, y, n, seed, **kwargs):
    g = torch.Generator().manual_seed(seed)
    return [pgd(model, x, y, restarts=1, generator=g, **kwargs) for _ in range(n)]


@pytest.mark.parametrize("loss", ["ce", "kl", "targeted"])
def test_restarts_keep_the_worst_case_per_sample(model, batch, loss):
    x, y = batch
    target = (y + 2) % NUM_CLASSES
    kwargs = dict(
        eps=LINF_EPS, alpha=LINF_ALPHA, steps=3, loss=loss, random_start="uniform", target=target
    )
    singles = _one_restart_at_a_time(model, x, y, 3, seed=5, **kwargs)
    multi = pgd(model, x, y, restarts=3, generator=torch.Generator().manual_seed(5), **kwargs)

    def score(x_adv):
        logits = logits_of(model, x_adv)
        if loss == "ce":
            return logits.argmax(1) != y, F.cross_entropy(logits, y, reduction="none")
        if loss == "targeted":
            return logits.argmax(1) == target, -F.cross_entropy(logits, target, reduction="none")
        return torch.zeros_like(y, dtype=torch.bool), kl_to_clean(model, x, x_adv)

    won, value = score(multi)
    for single in singles:
        won_1, value_1 = score(single)
        # Lexicographic: success first (ce / targeted), then the loss.
        assert (won | ~won_1).all()
        assert ((won & ~won_1) | (value >= value_1 - TOL)).all()
    # The result is, per sample, one of the restarts (not a blend of them).
    matches = torch.stack([(multi == s).flatten(1).all(1) for s in singles])
    assert matches.any(0).all()
    assert_in_ball(multi, x, LINF_EPS, "linf")


class Switch(nn.Module):
    """Bright inputs are misclassified with a *lower* CE than dark ones, which are correct."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fooled = x.new_tensor([0.0, 0.1, -5.0])  # argmax 1, CE(y=0) = 0.75
        unsure = x.new_tensor([0.01, 0.0, 0.0])  # argmax 0, CE(y=0) = 1.09
        bright = x.flatten(1).mean(1, keepdim=True) > 0.5
        return torch.where(bright, fooled, unsure)


def test_ce_restarts_prefer_a_misclassified_restart_over_a_higher_loss():
    # With no steps the result is the random start itself, bright or dark by chance.
    x, y = torch.full((32, 3, 8, 8), 0.5), torch.zeros(32, dtype=torch.long)
    kwargs = dict(eps=0.1, alpha=0.0, steps=0)
    singles = _one_restart_at_a_time(Switch(), x, y, 3, seed=0, **kwargs)
    multi = pgd(Switch(), x, y, restarts=3, generator=torch.Generator().manual_seed(0), **kwargs)
    fooled_once = torch.stack([logits_of(Switch(), s).argmax(1) != y for s in singles]).any(0)
    fooled_always = torch.stack([logits_of(Switch(), s).argmax(1) != y for s in singles]).all(0)
    assert (fooled_once & ~fooled_always).any(), "the test needs samples with mixed restarts"
    assert torch.equal(logits_of(Switch(), multi).argmax(1) != y, fooled_once)


# --------------------------------------------------------------------------- L2 specifics


class Gain(nn.Module):
    """Multiplies the logits of bright images by 1000, so their input gradient is huge."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bright = (x.flatten(1).mean(1, keepdim=True) > 0.7).to(x.dtype)
        return self.net(x) * (1 + 999 * bright)


def test_l2_projection_and_step_are_per_sample(model):
    # Mid-grey images so the [0, 1] clip never binds; one sample is bright with a huge gradient.
    torch.manual_seed(3)
    x = 0.4 + 0.1 * torch.rand(4, 3, 8, 8)
    x[0] = 0.75 + 0.1 * torch.rand(3, 8, 8)
    y = torch.arange(4) % NUM_CLASSES
    gained = Gain(model)
    kwargs = dict(eps=L2_EPS, alpha=0.3, steps=5, norm="l2", random_start="zero")
    together = pgd(gained, x, y, **kwargs)
    # Every sample ends on its own sphere of radius eps: a batch-wide renorm would shrink them.
    norms = (together - x).flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, torch.full_like(norms, L2_EPS), atol=1e-4, rtol=0)
    # And the dim samples move exactly as they would without the bright one in the batch.
    alone = pgd(gained, x[1:], y[1:], **kwargs)
    torch.testing.assert_close(together[1:], alone, atol=1e-6, rtol=0)


class Flat(nn.Module):
    """Saturates at 0.5: bright pixels have exactly zero input gradient."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.clamp(max=0.5))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_zero_gradient_sample_stays_put_without_nan(model, norm):
    x, y = make_batch(4)
    x = x * 0.4
    x[0] = 1.0  # inside the flat region, whatever the step
    x_adv = pgd(Flat(model), x, y, eps=0.1, alpha=0.05, steps=3, norm=norm, random_start="zero")
    assert torch.isfinite(x_adv).all()
    assert torch.equal(x_adv[0], x[0])
    assert (x_adv[1:] != x[1:]).any()


# --------------------------------------------------------------------------- single step


def test_fgsm_takes_one_full_sign_step(model, batch):
    x, y = batch
    x_adv = fgsm(model, x, y, eps=LINF_EPS)
    delta = x_adv - x
    unclipped = (x_adv > 0) & (x_adv < 1)
    assert unclipped.float().mean() > 0.9
    torch.testing.assert_close(
        delta[unclipped].abs(), torch.full_like(delta[unclipped], LINF_EPS), atol=TOL, rtol=0
    )
    assert_in_ball(x_adv, x, LINF_EPS, "linf")
    assert ce(model, x_adv, y).mean() > ce(model, x, y).mean()


def test_rs_fgsm_stays_in_ball(model, batch):
    x, y = batch
    x_adv = rs_fgsm(model, x, y, eps=LINF_EPS)  # default step 1.25 eps overshoots, then projects
    assert_in_ball(x_adv, x, LINF_EPS, "linf")
    on_boundary = ((x_adv - x).abs() - LINF_EPS).abs() < TOL
    assert on_boundary.float().mean() > 0.3


def test_n_fgsm_is_not_projected_but_bounded(model, batch):
    x, y = batch
    eps = LINF_EPS
    x_adv = n_fgsm(model, x, y, eps=eps)  # noise 2 eps, step eps
    delta = (x_adv - x).abs()
    assert (delta > eps + 1e-4).any(), "N-FGSM must not project back to the eps-ball"
    assert delta.max() <= 3 * eps + TOL
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    x_small = n_fgsm(model, x, y, eps=eps, noise=0.01, alpha=0.02)
    assert (x_small - x).abs().max() <= 0.03 + TOL


# --------------------------------------------------------------------------- model hygiene

ATTACK_CALLS = {
    "pgd": dict(eps=LINF_EPS, alpha=LINF_ALPHA, steps=2, restarts=2),
    "fgsm": dict(eps=LINF_EPS),
    "rs_fgsm": dict(eps=LINF_EPS),
    "n_fgsm": dict(eps=LINF_EPS),
}


def test_registry_names_every_attack():
    expected = {"pgd": pgd, "fgsm": fgsm, "rs_fgsm": rs_fgsm, "n_fgsm": n_fgsm}
    assert expected == ATTACKS


@pytest.mark.parametrize("name", sorted(ATTACK_CALLS))
def test_attack_leaves_modes_statistics_and_grads_alone(model, batch, name):
    x, y = batch
    model.train()
    model.head.eval()  # a mixed state must come back exactly, module by module
    model.head.bias.requires_grad_(False)
    modes = {n: m.training for n, m in model.named_modules()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}

    x_adv = ATTACKS[name](model, x, y, **ATTACK_CALLS[name])

    assert {n: m.training for n, m in model.named_modules()} == modes
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    for n, b in model.named_buffers():
        assert torch.equal(b, buffers[n]), f"buffer {n} changed: the attack ran in train mode"
    assert all(p.grad is None for p in model.parameters())
    assert not x_adv.requires_grad


def test_existing_parameter_grads_are_not_accumulated_into(model, batch):
    x, y = batch
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    pgd(model, x, y, eps=LINF_EPS, alpha=LINF_ALPHA, steps=2)
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in model.parameters())


def test_input_requiring_grad_is_left_alone(model, batch):
    x, y = batch
    x.requires_grad_(True)
    x_adv = pgd(model, x, y, eps=LINF_EPS, alpha=LINF_ALPHA, steps=2)
    assert x.grad is None and x_adv.grad_fn is None


def test_eval_mode_restores_on_exception(model):
    model.train()
    model.features[1].eval()
    with pytest.raises(RuntimeError, match="boom"), eval_mode(model):
        assert not any(m.training for m in model.modules())
        raise RuntimeError("boom")
    assert model.training and model.head.training and not model.features[1].training


@pytest.mark.parametrize("context", [torch.no_grad, torch.inference_mode])
def test_attack_works_inside_no_grad_contexts(model, batch, context):
    x, y = batch
    kwargs = dict(eps=LINF_EPS, alpha=LINF_ALPHA, steps=3, random_start="zero")
    expected = pgd(model, x, y, **kwargs)
    with context():
        got = pgd(model, x, y, **kwargs)
    assert torch.equal(got, expected)


def test_float64_model_and_input():
    model = make_model(dtype=torch.float64)
    x, y = make_batch(dtype=torch.float64)
    x_adv = pgd(model, x, y, eps=LINF_EPS, alpha=LINF_ALPHA, steps=3)
    assert x_adv.dtype == torch.float64
    assert_in_ball(x_adv, x, LINF_EPS, "linf")
    assert ce(model, x_adv, y).mean() > ce(model, x, y).mean()


# --------------------------------------------------------------------------- validation

PGD_OK = dict(eps=LINF_EPS, alpha=LINF_ALPHA, steps=1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m, x, y: pgd(m, x, y, **PGD_OK, norm="l1"), "unknown norm 'l1'"),
        (lambda m, x, y: pgd(m, x, y, **PGD_OK, loss="mse"), "unknown loss 'mse'"),
        (lambda m, x, y: pgd(m, x, y, **PGD_OK, random_start="gauss"), "unknown random_start"),
        (lambda m, x, y: pgd(m, x, y, eps=-0.1, alpha=0.1, steps=1), "eps must be >= 0"),
        (lambda m, x, y: pgd(m, x, y, eps=0.1, alpha=-1.0, steps=1), "alpha must be >= 0"),
        (lambda m, x, y: pgd(m, x, y, eps=0.1, alpha=0.1, steps=-1), "steps must be"),
        (lambda m, x, y: pgd(m, x, y, **PGD_OK, restarts=0), "restarts must be"),
        (lambda m, x, y: pgd(m, x, y, **PGD_OK, loss="targeted"), "needs target="),
        (lambda m, x, y: pgd(m, x, None, **PGD_OK), "needs the true labels"),
        (lambda m, x, y: pgd(m, x * 255, y, **PGD_OK), r"must lie in \[0, 1\]"),
        (lambda m, x, y: pgd(m, x - 0.5, y, **PGD_OK), r"must lie in \[0, 1\]"),
        (lambda m, x, y: pgd(m, x, y[:-1], **PGD_OK), r"y must have shape \(N,\)"),
        (lambda m, x, y: pgd(m, x, y.float(), **PGD_OK), "integer"),
        (
            lambda m, x, y: pgd(m, x, y, **PGD_OK, loss="targeted", target=y[:3]),
            r"target must have shape \(N,\)",
        ),
        (lambda m, x, y: fgsm(m, x, y, eps=-1.0), "fgsm: eps must be >= 0"),
        (lambda m, x, y: rs_fgsm(m, x, y, eps=0.1, alpha=-0.1), "rs_fgsm: step size alpha"),
        (lambda m, x, y: n_fgsm(m, x, y, eps=0.1, noise=-0.1), "n_fgsm: noise must be >= 0"),
        (lambda m, x, y: n_fgsm(m, x.flatten(), y, eps=0.1), "batch dimension"),
    ],
)
def test_argument_validation(model, batch, call, message):
    x, y = batch
    with pytest.raises(ValueError, match=message):
        call(model, x, y)


def test_tiny_float_noise_outside_range_is_accepted(model, batch):
    x, y = batch
    x = x.clone()
    x[0, 0, 0, 0], x[0, 0, 0, 1] = -5e-7, 1 + 5e-7
    assert_in_ball(pgd(model, x, y, **PGD_OK), x.clamp(0, 1), LINF_EPS + 1e-6, "linf")


@pytest.mark.slow
def test_our_pgd_matches_torchattacks_on_a_robust_preset():
    """The library users trust as a yardstick: same model, images, budget and step, the robust
    accuracy under our PGD and under torchattacks' PGD agree within sampling noise."""
    import torchattacks

    from hubmodels import RobustClassifier
    from hubmodels.training.data import load_dataset

    model = RobustClassifier.from_pretrained("fmnist-smallcnn-pgdat")
    test = load_dataset("fashion-mnist", augment=False, val_size=0).test
    x = torch.stack([test[i][0] for i in range(200)])
    y = test.labels[:200].clone()
    torch.manual_seed(0)
    ours = pgd(model, x, y, eps=0.1, alpha=0.025, steps=20)
    torch.manual_seed(0)
    theirs = torchattacks.PGD(model, eps=0.1, alpha=0.025, steps=20, random_start=True)(x, y)
    with torch.no_grad():
        acc_ours = (model(ours).argmax(1) == y).double().mean().item()
        acc_theirs = (model(theirs).argmax(1) == y).double().mean().item()
        clean = (model(x).argmax(1) == y).double().mean().item()
    assert acc_ours < clean - 0.05  # the attack does something
    assert abs(acc_ours - acc_theirs) <= 0.03, (acc_ours, acc_theirs)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_each_norm_ball_owns_its_start_projection_and_step(norm):
    from hubmodels.attacks import BALLS

    ball = BALLS[norm]
    measure = {
        "linf": lambda d: d.flatten(1).abs().amax(1),
        "l2": lambda d: d.flatten(1).norm(dim=1),
    }
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    eps = 0.1
    start = ball.uniform_start(x, eps, torch.Generator().manual_seed(1))
    assert (measure[norm](start) <= eps + 1e-6).all() and (measure[norm](start) > 0).all()
    project = ball.projector(x, eps)
    far = project(x + 5 * torch.randn_like(x))
    assert (measure[norm](far - x) <= eps + 1e-6).all() and far.min() >= 0 and far.max() <= 1
    assert torch.equal(project(far), far)  # a projection: applying it twice changes nothing
    step = ball.steepest_direction(torch.randn_like(x))
    assert torch.allclose(measure[norm](step), torch.ones(6))
    assert torch.equal(ball.steepest_direction(torch.zeros_like(x)), torch.zeros_like(x))
