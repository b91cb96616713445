"""Metrics: robust accuracy and energy diagnostics (generation metrics arrive with sampling)."""

from hubmodels.metrics.robust_accuracy import accuracy, autoattack, energy_diagnostics, pgd_attack

__all__ = ["accuracy", "autoattack", "energy_diagnostics", "pgd_attack"]
