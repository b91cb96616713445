"""What ``RobustClassifier.sample`` returns: the generation output with per-sample diagnostics.

Its own module because ``hubmodels.outputs`` imports diffusers (about two seconds): the sampler
imports it when it first returns, not when ``hubmodels`` is imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hubmodels.outputs import GenerationOutput


@dataclass
class SampleOutput(GenerationOutput):
    """``images``, ``tensors`` and ``settings`` (``hubmodels.outputs``), and per sample:"""

    labels: list[int] = field(default_factory=list)
    energies: list[float] = field(default_factory=list)  # final joint energy E(x, y)
    steps: list[int] = field(default_factory=list)  # steps each sample actually took
    accepted: list[bool] = field(default_factory=list)  # classified as y (with reject=True)
