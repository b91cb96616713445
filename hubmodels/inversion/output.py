"""What every inversion task returns: the generation output with the loss of each step."""

from __future__ import annotations

from dataclasses import dataclass, field

from hubmodels.outputs import GenerationOutput


@dataclass
class InversionOutput(GenerationOutput):
    """``images``, ``tensors`` and ``settings`` (``hubmodels.outputs``: task, prompt, seed, steps,
    resolution, encoder, loss weights, ..., as written into the PNG metadata by ``save_png``),
    and ``losses``: the total loss after each optimisation step."""

    losses: list[float] = field(default_factory=list)
