"""What every inversion task returns: a diffusers-style output with its own provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from diffusers.utils import BaseOutput
from PIL import Image


@dataclass
class InversionOutput(BaseOutput):
    """Like diffusers' ``ImagePipelineOutput`` (``out.images[0]``, ``out["images"]``), plus

    ``losses``: the total loss after each optimisation step, and ``settings``: every setting that
    made the images (task, prompt, seed, steps, resolution, encoder, loss weights, ...), as
    written into the PNG metadata by ``save_png``.
    """

    images: list[Image.Image]
    losses: list[float] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
