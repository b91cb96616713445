"""The contract both generators keep: ``RobustClassifier.sample`` and ``CLIPInverter``'s tasks.

Every generating call takes

* ``num_inference_steps``: how many optimisation steps (None: the generator's default);
* ``seed`` and/or ``generator``: ``seed`` wins; else one seed is drawn from ``generator``; the
  call's every random choice derives from that one integer, which ``out.settings["seed"]``
  records, so the same seed gives the same images;
* ``callback(step, images, info)``: every few steps, ``step`` 1-based, ``images`` the current
  (N, C, H, W) tensor in [0, 1], ``info`` a dict of the generator's diagnostics at that step
  (the sampler: ``energies``; the inverter: ``loss``), for previews and progress bars;

and returns a ``GenerationOutput``: a diffusers ``BaseOutput`` (``out.images[0]``,
``out["images"]``) with PIL ``images``, the same pixels as ``tensors``, and ``settings``, every
setting that made them. Each generator's output adds its own diagnostics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from diffusers.utils import BaseOutput
from PIL import Image

Callback = Callable[[int, torch.Tensor, dict[str, Any]], None]


@dataclass
class GenerationOutput(BaseOutput):
    """PIL ``images``, the same pixels as ``tensors`` (N, C, H, W) in [0, 1], and ``settings``."""

    images: list[Image.Image]
    tensors: torch.Tensor | None = field(default=None, repr=False)
    settings: dict[str, Any] = field(default_factory=dict)


def resolve_seed(
    generator: torch.Generator | None, seed: int | None, default: int | None = None
) -> int:
    """One integer seed per call: ``seed``, else one drawn from ``generator``, else ``default``,
    else a fresh one."""
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        return seed
    if generator is not None:
        return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    if default is not None:
        return default
    return int(torch.randint(0, 2**31 - 1, (1,)))
