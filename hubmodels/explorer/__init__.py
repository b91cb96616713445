"""The energy explorer: a classifier read as an energy-based model, one input at a time.

``energy_report`` (every energy, the prediction and the OOD verdict), ``attack_trace`` (PGD,
step by step, in energies), the ``EnergyReference`` a checkpoint carries (real test images'
E(x) histogram and OOD threshold), and ``to_model_input`` for uploads. docs/energy_explorer.md.
"""

from hubmodels.explorer.inputs import to_model_input
from hubmodels.explorer.reference import EnergyReference, ReferenceShape
from hubmodels.explorer.report import EnergyReport, energy_report
from hubmodels.explorer.trace import AttackStep, attack_trace

__all__ = [
    "AttackStep",
    "EnergyReference",
    "EnergyReport",
    "ReferenceShape",
    "attack_trace",
    "energy_report",
    "to_model_input",
]
