"""The CO/RO alarm on synthetic histories."""

from hubmodels.training.alarm import check_alarm


def _history(pgd, de):
    return [{"val_pgd_acc": a, "delta_energy": d} for a, d in zip(pgd, de, strict=True)]


def test_healthy_training_stays_quiet():
    h = _history([0.2, 0.3, 0.35, 0.4, 0.42], [-0.02, -0.03, -0.02, -0.04, -0.03])
    assert all(check_alarm(h[: i + 1]) is None for i in range(len(h)))


def test_collapse_of_pgd_accuracy_is_catastrophic_overfitting():
    h = _history([0.3, 0.4, 0.05], [0.0, 0.0, 0.0])
    assert "catastrophic overfitting" in check_alarm(h)


def test_delta_energy_drop_is_robust_overfitting():
    h = _history([0.4, 0.42, 0.43, 0.44, 0.41], [-0.10, -0.12, -0.11, -0.10, -0.9])
    message = check_alarm(h)
    assert "diverged" in message and "robust overfitting" in message


def test_delta_energy_needs_a_history_before_it_can_diverge():
    assert check_alarm(_history([0.4, 0.4], [0.0, 5.0])) is None
