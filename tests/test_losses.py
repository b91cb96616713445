"""Training losses: exact forms of docs/methods.md 2.2-2.5 and 3.3, and that each one trains."""

import copy

import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_classifier
from hubmodels.energy import weat_weight
from hubmodels.training.losses import (
    DER_FORMS,
    DER_POINTS,
    LOSSES,
    AttackSettings,
    der_penalty,
    der_point,
    training_loss,
    weat_adv_loss,
    weat_nat_loss,
)

ATTACK = AttackSettings(norm="linf", eps=0.1, alpha=0.05, steps=2)


def _batch(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


COMBINATIONS = [(m, 0.0) for m in sorted(LOSSES)] + [
    (m, 1.0)
    for m in sorted(LOSSES)
    if m != "standard"  # DER needs an adversarial
]


@pytest.mark.parametrize("method, der_lambda", COMBINATIONS)
def test_each_loss_decreases_on_a_tiny_batch(method, der_lambda):
    model = tiny_classifier().train()
    x, y = _batch()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        torch.manual_seed(1)  # same attack start each step, so only the weights change
        out = training_loss(method, model, x, y, ATTACK, der_lambda=der_lambda)
        optimiser.zero_grad()
        out.loss.backward()
        optimiser.step()
        losses.append(out.loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_weat_adv_is_the_weighted_sum_over_the_batch_size():
    model = tiny_classifier().train()
    x, y = _batch()
    torch.manual_seed(0)
    out = weat_adv_loss(model, x, y, ATTACK, beta=6.0)
    nat, adv = model(x), model(out.x_adv)  # train mode, same weights: same logits
    p = F.softmax(nat, 1)
    kl = (p * (F.log_softmax(nat, 1) - torch.log(F.softmax(adv, 1) + 1e-12))).sum(1)
    per_sample = F.cross_entropy(adv, y, reduction="none") + 6.0 * kl
    w = 1 / F.softplus(torch.logsumexp(nat, 1).abs())
    assert torch.allclose(out.loss, (w * per_sample).sum() / len(y), atol=1e-5)
    # Not the weighted mean: the WEAT code divides by B, and that changes the effective lr.
    assert not torch.allclose(out.loss, (w * per_sample).sum() / w.sum(), atol=1e-4)


@pytest.mark.parametrize("method", ["weat_adv", "weat_nat"])
def test_weat_weights_reduction_divides_the_weighted_sum_by_the_sum_of_the_weights(method):
    model = tiny_classifier().train()
    x, y = _batch()
    out = LOSSES[method](model, x, y, ATTACK, weat_reduction="weights")
    nat, adv = out.logits_nat, out.logits_adv
    p = F.softmax(nat, 1)
    kl = (p * (F.log_softmax(nat, 1) - torch.log(F.softmax(adv, 1) + 1e-12))).sum(1)
    ce = F.cross_entropy(adv if method == "weat_adv" else nat, y, reduction="none")
    w = weat_weight(nat)
    weighted = (w * (ce + 6.0 * kl)).sum()
    # the weighted mean: the paper's sum / B times B / sum w (the step-size ablation)
    assert torch.allclose(out.loss, weighted / w.sum(), atol=1e-5)
    paper = weighted / len(y)
    assert not torch.allclose(out.loss, paper, atol=1e-3)  # a different step size, not a no-op
    with pytest.raises(ValueError, match="unknown WEAT reduction"):
        LOSSES[method](model, x, y, ATTACK, weat_reduction="sum")


def test_weat_reduction_is_a_weat_only_setting_recorded_in_the_card():
    from hubmodels.training.config import TrainConfig
    from hubmodels.training.trainer import recipe

    assert recipe(TrainConfig(method="weat_adv", weat_reduction="weights"))["weat_reduction"] == (
        "weights"
    )
    assert "weat_reduction" not in recipe(TrainConfig(method="trades"))
    with pytest.raises(ValueError, match="weat_adv and weat_nat only"):
        TrainConfig(method="trades", weat_reduction="weights")
    with pytest.raises(ValueError, match="unknown weat_reduction"):
        TrainConfig(method="weat_adv", weat_reduction="mean")


def test_weat_nat_uses_natural_cross_entropy_and_a_detached_weight():
    model = tiny_classifier().train()
    x, y = _batch()
    torch.manual_seed(0)
    out = weat_nat_loss(model, x, y, ATTACK)
    nat, adv = model(x), model(out.x_adv)
    p = F.softmax(nat, 1)
    kl = (p * (F.log_softmax(nat, 1) - torch.log(F.softmax(adv, 1) + 1e-12))).sum(1)
    w = weat_weight(nat)
    expected = (w * (F.cross_entropy(nat, y, reduction="none") + 6.0 * kl)).sum() / len(y)
    assert torch.allclose(out.loss, expected, atol=1e-5)
    # The gradient through w is zero: scaling the loss by a detached w equals our loss' grad.
    grads = torch.autograd.grad(out.loss, model.backbone.head.bias)
    grads_ref = torch.autograd.grad(expected, model.backbone.head.bias)
    assert torch.allclose(grads[0], grads_ref[0], atol=1e-6)


def test_trades_keeps_gradient_through_the_natural_softmax():
    model = tiny_classifier().train()
    x, y = _batch()
    out = LOSSES["trades"](model, x, y, ATTACK)
    (g,) = torch.autograd.grad(out.loss, out.logits_nat)
    ce_only = torch.autograd.grad(F.cross_entropy(out.logits_nat, y), out.logits_nat)[0]
    assert not torch.allclose(g, ce_only)  # the KL term contributes through p(.|x)


@pytest.mark.parametrize("form", DER_FORMS)
def test_der_penalty_forms_by_hand(form):
    nat = torch.tensor([[2.0, 0.0], [0.0, 1.0]], requires_grad=True)
    adv = torch.tensor([[1.0, 0.0], [0.0, 3.0]], requires_grad=True)
    y = torch.tensor([0, 1])
    d = -torch.logsumexp(nat, 1) + torch.logsumexp(adv, 1)
    dj = torch.tensor([-2.0 + 1.0, -1.0 + 3.0])
    expected = {
        "squared": d.pow(2).mean(),
        "absolute": d.abs().mean(),
        "joint": (d.pow(2) + dj.pow(2)).mean(),
        "hinge": torch.relu(-d).pow(2).mean(),
        "relative": (
            -torch.logsumexp(nat / nat.detach().std(1, keepdim=True), 1)
            + torch.logsumexp(adv / nat.detach().std(1, keepdim=True), 1)
        )
        .pow(2)
        .mean(),
    }[form]
    penalty = der_penalty(nat, adv, y, form)
    assert torch.allclose(penalty, expected)
    penalty.backward()
    if form != "hinge" or (d < 0).any():
        # Gradient flows through both energies: the penalty shrinks the gap from both sides.
        assert nat.grad.abs().sum() > 0 and adv.grad.abs().sum() > 0


def test_der_reuses_the_base_attack_and_adds_lambda_times_the_penalty():
    model = tiny_classifier().train()
    twin = copy.deepcopy(model)  # train-mode forwards move BN statistics: use a fresh twin
    x, y = _batch()
    torch.manual_seed(3)
    base = training_loss("trades", model, x, y, ATTACK)
    torch.manual_seed(3)
    with_der = training_loss("trades", twin, x, y, ATTACK, der_lambda=0.5)
    assert torch.equal(base.x_adv, with_der.x_adv)
    penalty = der_penalty(with_der.logits_nat, with_der.logits_adv, y)
    assert torch.allclose(with_der.loss, base.loss + 0.5 * penalty)


def test_der_on_pgd_at_adds_a_natural_forward_and_unknown_inputs_fail():
    model = tiny_classifier().train()
    x, y = _batch()
    out = training_loss("pgd_at", model, x, y, ATTACK, der_lambda=1.0)
    assert out.logits_nat is not None
    with pytest.raises(ValueError, match="DER needs an adversarial"):
        training_loss("standard", model, x, y, ATTACK, der_lambda=1.0)
    with pytest.raises(ValueError, match="unknown training method"):
        training_loss("magic", model, x, y, ATTACK)
    with pytest.raises(ValueError, match="unknown DER form"):
        training_loss("trades", model, x, y, ATTACK, der_lambda=1.0, der_form="cubic")


def test_the_relative_form_cannot_be_met_by_shrinking_the_logits():
    nat = torch.tensor([[6.0, 0.0, 0.0], [0.0, 5.0, 1.0]])
    adv = torch.tensor([[3.0, 1.0, 0.0], [1.0, 2.0, 2.0]])
    y = torch.tensor([0, 1])
    big, small = der_penalty(nat * 4, adv * 4, y), der_penalty(nat / 4, adv / 4, y)
    assert small < big / 100  # the squared form is met by shrinking the logits
    relative = [der_penalty(nat * c, adv * c, y, "relative") for c in (0.01, 0.25, 1.0, 16.0)]
    assert all(torch.allclose(r, relative[0]) for r in relative) and relative[0] > 0


@pytest.mark.parametrize("point", DER_POINTS)
def test_der_measures_the_gap_where_it_is_told(point):
    model = tiny_classifier().train()
    x, y = _batch()
    torch.manual_seed(5)
    out = training_loss("fgsm", model, x, y, ATTACK, der_lambda=1.0, der_at=point)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    if point != "adversarial":
        far = der_point(point, model, x, y, ATTACK)
        assert (far - x).abs().max() <= ATTACK.eps + 1e-6 and far.min() >= 0 and far.max() <= 1
        assert not torch.equal(far, out.x_adv)
    with pytest.raises(ValueError, match="unknown DER point 'corner'"):
        der_point("corner", model, x, y, ATTACK)


def test_single_step_attacks_in_train_mode_use_batch_statistics():
    """attack_bn=train: BatchNorm sees the batch, and its running statistics move."""
    from hubmodels.attacks import fgsm

    model = tiny_classifier().eval()
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    x, y = _batch()
    before = bn.running_mean.clone()
    eval_adv = fgsm(model, x, y, eps=0.1)
    assert torch.equal(bn.running_mean, before) and not model.training
    train_adv = fgsm(model, x, y, eps=0.1, in_train_mode=True)
    assert not torch.equal(bn.running_mean, before)  # the attack's forward used the batch
    assert not model.training  # and the model comes back in the mode it had
    assert not torch.equal(train_adv, eval_adv)


@pytest.mark.parametrize("method", ["standard", "pgd_at", "fgsm"])
def test_label_smoothing_mixes_the_uniform_target_into_the_cross_entropy(method):
    """CE with smoothing s = (1 - s) CE(y) + s * mean_k CE(k), on the logits the loss returns."""
    model = tiny_classifier().eval()  # eval: the same logits on every forward pass
    x, y = _batch()
    torch.manual_seed(0)
    plain = training_loss(method, model, x, y, ATTACK)
    torch.manual_seed(0)  # the same random start, so the same adversarial
    smoothed = training_loss(method, model, x, y, ATTACK, label_smoothing=0.3)
    logits = plain.logits_nat if method == "standard" else plain.logits_adv
    log_p = F.log_softmax(logits, dim=1)
    expected = (0.7 * -log_p.gather(1, y[:, None]).squeeze(1) - 0.3 * log_p.mean(1)).mean()
    assert torch.allclose(smoothed.loss, expected, atol=1e-6)
    assert not torch.allclose(smoothed.loss, plain.loss)  # the flag did reach the loss


def test_label_smoothing_is_refused_where_the_loss_is_not_one_cross_entropy():
    x, y = _batch()
    with pytest.raises(ValueError, match="label smoothing applies to"):
        training_loss("trades", tiny_classifier(), x, y, ATTACK, label_smoothing=0.1)
