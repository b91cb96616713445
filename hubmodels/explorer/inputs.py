"""Any uploaded image, made into what a small classifier takes, with the steps said aloud.

Fashion-MNIST classifiers take 28 x 28 grey garments, light on a black background. A photo
becomes one by: the largest centred square, grey by ITU-R 601 luma (0.299 R + 0.587 G +
0.114 B), an area-average resize, and an inversion when its border is brighter than mid-grey
(a garment photographed on white). The explorer shows the result and this description, so a
visitor sees what the model was actually given.
"""

from __future__ import annotations

from typing import Any

import torch

from hubmodels.images import centre_square, load_image

LUMA = (0.299, 0.587, 0.114)


def to_model_input(
    source: Any, channels: int, size: int, *, invert: bool | None = None
) -> tuple[torch.Tensor, str]:
    """(1, channels, size, size) in [0, 1] from any image ``load_image`` reads, and a sentence
    saying how it was converted.

    ``invert``: True or False forces it; None (the default) inverts when the mean of the
    image's outer ring of pixels is above 0.5. Raises ``ImageInputError`` (a ``ValueError``)
    for anything that is not a readable image.
    """
    if channels not in (1, 3):
        raise ValueError(f"models take 1 or 3 channels, got {channels}")
    rgb = load_image(source)  # (1, 3, H, W), decoded, longer side at most 1024
    height, width = rgb.shape[-2:]
    steps = [f"{width}×{height} upload"]
    if height != width:
        steps.append(f"centre square {min(height, width)}×{min(height, width)}")
    x = rgb
    if channels == 1:
        x = sum(weight * rgb[:, i : i + 1] for i, weight in enumerate(LUMA))
        steps.append("grey (luma)")
    x = centre_square(x, size).clamp(0, 1)
    steps.append(f"resized to {size}×{size}")
    if invert is None:
        invert = bool(_border(x).mean() > 0.5)
        if invert:
            steps.append("inverted (light background; the training images are dark)")
    elif invert:
        steps.append("inverted")
    if invert:
        x = 1 - x
    return x.contiguous(), ", ".join(steps) + "."


def _border(x: torch.Tensor) -> torch.Tensor:
    """The outermost ring of pixels of (1, C, H, W)."""
    return torch.cat([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], dim=-1)
