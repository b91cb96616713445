"""Energies and WEAT weights against hand-computed values (docs/methods.md 1.1, 1.3, 2.2)."""

import math

import pytest
import torch
import torch.nn.functional as F

from hubmodels.energy import delta_energy, energy, joint_energy, marginal_energy, weat_weight

LOGITS = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])


def test_marginal_energy_is_negative_logsumexp():
    by_hand = -math.log(math.exp(1) + math.exp(2) + math.exp(3))
    assert marginal_energy(LOGITS)[0].item() == pytest.approx(by_hand)
    assert marginal_energy(LOGITS)[1].item() == pytest.approx(-math.log(3))


def test_joint_energy_is_negative_logit_of_the_label():
    assert joint_energy(LOGITS, torch.tensor([2, 0])).tolist() == [-3.0, 0.0]
    assert torch.equal(
        energy(LOGITS, torch.tensor([2, 0])), joint_energy(LOGITS, torch.tensor([2, 0]))
    )
    assert torch.equal(energy(LOGITS), marginal_energy(LOGITS))


def test_cross_entropy_is_joint_minus_marginal_energy():
    y = torch.tensor([0, 1])
    ce = F.cross_entropy(LOGITS, y, reduction="none")
    assert torch.allclose(ce, joint_energy(LOGITS, y) - marginal_energy(LOGITS))


def test_delta_energy_sign_is_natural_minus_adversarial():
    nat, adv = torch.tensor([[5.0, 0.0]]), torch.tensor([[1.0, 0.0]])
    # The natural point is more confident, so it has the lower energy: dE < 0.
    expected = -math.log(math.exp(5) + 1) + math.log(math.e + 1)
    assert delta_energy(nat, adv).item() == pytest.approx(expected)
    assert delta_energy(nat, adv, torch.tensor([0])).item() == pytest.approx(-5.0 + 1.0)


@pytest.mark.parametrize(
    "e, w",
    [
        (0.0, 1.443),
        (-2.0, 0.470),
        (-3.87, 0.257),
        (-5.0, 0.200),
        (-8.0, 0.125),
        (-11.47, 0.087),
        (-20.0, 0.050),
    ],
)
def test_weat_weight_matches_hand_computed_values(e, w):
    # Logits [e', e'] with logsumexp = -e: each logit is -e - log 2.
    logits = torch.full((1, 2), -e - math.log(2.0), requires_grad=True)
    assert marginal_energy(logits).item() == pytest.approx(e, abs=1e-5)
    weight = weat_weight(logits)
    assert weight.item() == pytest.approx(w, abs=1e-3)
    assert not weight.requires_grad  # detached: the network cannot lower its loss through w


def test_trades_kl_splits_into_conditional_and_marginal_terms():
    """WEAT Proposition 1 (docs/methods.md 1.3): KL = E_p[E(x*,k) - E(x,k)] + (E(x) - E(x*))."""
    torch.manual_seed(0)
    nat, adv = torch.randn(16, 10) * 3, torch.randn(16, 10) * 3
    kl = F.kl_div(
        F.log_softmax(adv, 1), F.log_softmax(nat, 1), log_target=True, reduction="none"
    ).sum(1)
    p = F.softmax(nat, 1)
    conditional = (p * ((-adv) - (-nat))).sum(1)
    assert torch.allclose(kl, conditional + delta_energy(nat, adv), atol=1e-5)
