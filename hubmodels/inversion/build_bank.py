"""An anchor bank: one AWP anchor per real image, with its embeddings (docs/methods.md 4.1).

For each (image, caption) pair: fit an INR of exactly the inverter's architecture to a blurred
copy of the image under adversarial weight perturbation (4.4), and record the image's embedding
(averaged over the inverter's augmentations, as reconstruction targets are) and, when the
encoder has a text tower, the caption's text embedding. The anchors are fitted at a low
resolution: the target is blurred, so 64 pixels hold all it has, and an INR renders at any size.

The caption file is JSON lines, ``{"file": "relative/path.jpg", "caption": "..."}`` per image.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from hubmodels.images import load_image
from hubmodels.inversion.awp import fit_anchor
from hubmodels.inversion.bank import AnchorBank
from hubmodels.inversion.finer import FinerNet, INRConfig


def read_captions(
    images_dir: str | os.PathLike, captions: str | os.PathLike
) -> list[tuple[Path, str]]:
    """(image path, caption) pairs from a JSON-lines caption file; each named file must exist."""
    root, pairs = Path(images_dir), []
    lines = Path(captions).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            path, caption = root / record["file"], str(record["caption"])
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(
                f'{captions}:{number}: expected {{"file": ..., "caption": ...}}, got {line!r}'
            ) from err
        if not path.is_file():
            raise ValueError(f"{captions}:{number}: no image {path}")
        pairs.append((path, caption))
    if not pairs:
        raise ValueError(f"{captions} lists no images")
    return pairs


def fit_photo_anchor(
    image: torch.Tensor,
    inr: INRConfig,
    *,
    resolution: int = 64,
    steps: int = 500,
    lr: float = 5e-4,
    gamma: float = 5e-3,
    blur_sigma: float = 1.0,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """One anchor: an INR of config ``inr``, started from ``seed``, fitted with AWP to the
    photo ``image`` (1, C, H, W) area-resized to ``resolution`` and blurred (4.4). Returns its
    state dict on the CPU. Needs no encoder: only a bank's keys do."""
    small = torch.nn.functional.interpolate(image, size=(resolution, resolution), mode="area")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = FinerNet(inr).to(image.device)
    fit_anchor(net, small, steps=steps, lr=lr, gamma=gamma, blur_sigma=blur_sigma)
    return {name: tensor.detach().cpu() for name, tensor in net.state_dict().items()}


def build_bank(
    inverter,
    pairs: Sequence[tuple[object, str]],
    *,
    anchor_resolution: int = 64,
    anchor_steps: int = 500,
    anchor_lr: float = 5e-4,
    gamma: float = 5e-3,
    blur_sigma: float = 1.0,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> AnchorBank:
    """Fit one anchor per (image, caption) pair for ``inverter`` (its encoder and INR).

    Args:
        pairs: (image, caption); an image is anything ``load_image`` reads.
        anchor_resolution: side of the blurred fitting target, pixels.
        anchor_steps, anchor_lr, gamma: AWP fitting (4.4; gamma 0 = plain fitting).
        blur_sigma: Gaussian blur in pixels at ``anchor_resolution`` (1 px at 64 is about
            3.5 px at 224, inside 4.4's 2-4 px).
        seed: anchor i's INR starts from seed + i, so shards built by several processes
            give the same bank as one process.
        progress: called with 1 after each anchor (a tqdm ``update``).
    """
    anchors: dict[str, list[torch.Tensor]] = {}
    image_embeds, text_embeds, captions = [], [], []
    encoder = inverter.encoder
    for offset, (image, caption) in enumerate(pairs):
        x = load_image(image).to(inverter.device)
        state = fit_photo_anchor(
            x,
            inverter.inr_config,
            resolution=anchor_resolution,
            steps=anchor_steps,
            lr=anchor_lr,
            gamma=gamma,
            blur_sigma=blur_sigma,
            seed=seed + offset,
        )
        for name, tensor in state.items():
            anchors.setdefault(name, []).append(tensor)
        image_embeds.append(inverter.engine.image_embedding(x).cpu())
        if encoder.has_text:
            with torch.no_grad():
                text_embeds.append(encoder.encode_text([caption]).float()[0].cpu())
        captions.append(caption)
        if progress is not None:
            progress(1)
    return AnchorBank(
        image_embeds=torch.stack(image_embeds),
        anchors={name: torch.stack(tensors) for name, tensors in anchors.items()},
        captions=captions,
        encoder=encoder.name,
        inr=inverter.inr_config.to_dict(),
        text_embeds=torch.stack(text_embeds) if text_embeds else None,
    )
