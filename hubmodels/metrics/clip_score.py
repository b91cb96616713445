"""CLIP score: how well images match their prompts, as judged by a CLIP.

CLIPScore (Hessel et al. 2021, "CLIPScore: A Reference-free Evaluation Metric for Image
Captioning"), in the form torchmetrics and the CLIP^-1 paper's CLIPSIM use:
``100 * max(cos(E_I(image), E_T(prompt)), 0)``, averaged over pairs.

Score with a *different* CLIP than the one inverted (docs/methods.md 4.8, 5.15): an inverter
optimises exactly its own cosine, so self-scoring measures the optimiser, not the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from hubmodels.metrics.generation import Images, as_images


@torch.no_grad()
def clip_score(
    images: Images, prompts: Sequence[str], encoder: Any, batch_size: int = 32
) -> dict[str, Any]:
    """Mean and per-pair CLIP score of ``images`` (N, 3, H, W in [0, 1], or PIL) vs ``prompts``.

    ``encoder`` is a ``hubmodels.inversion.encoders.ImageEncoder`` with a text tower (an
    ``OpenCLIPEncoder``); it resizes and normalises the images itself.
    """
    x = as_images(images, "images")
    prompts = list(prompts)
    if len(prompts) != len(x):
        raise ValueError(f"{len(x)} images but {len(prompts)} prompts; pass one prompt per image")
    if not getattr(encoder, "has_text", False):
        raise ValueError(f"{getattr(encoder, 'name', encoder)!r} has no text tower: use a CLIP")
    device = next(encoder.buffers()).device
    scores = []
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size].to(device)
        image_embeds = torch.nn.functional.normalize(encoder.encode_image(batch).float(), dim=-1)
        text = encoder.encode_text(prompts[start : start + batch_size]).float()
        text_embeds = torch.nn.functional.normalize(text, dim=-1)
        scores.append(100 * (image_embeds * text_embeds).sum(-1).clamp(min=0).cpu())
    per_pair = torch.cat(scores)
    return {
        "clip_score": float(per_pair.mean()),
        "per_pair": per_pair.tolist(),
        "encoder": encoder.name,
        "resolution": encoder.input_size,
        "n": len(per_pair),
    }
