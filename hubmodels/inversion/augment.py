"""Batched augmentations and the augmentation-averaged embedding (docs/methods.md 4.6).

Inversion matches ``e* = normalise(mean_k theta(aug_k(x)))`` rather than theta(x): averaging
the encoder over random crops, affine warps, colour jitter and pixel noise stops the optimiser
from finding adversarial pixel patterns that fool one view only (DAS shows jitter and noise are
essential). Defaults are the plan's [P] values: n = 16 views, random-resized-crop area (0.6, 1),
shear +-10 degrees, scale 0.9-1.1, jitter 0.1 on brightness, contrast and saturation, noise 0.01.

All n views of all B images are one ``affine_grid`` + one ``grid_sample`` call and one encoder
call: a step of inversion costs one batched forward/backward, not n of them. Random numbers come
from a CPU ``torch.Generator`` (the pixel noise from a device generator it seeds), so a seed
gives the same views every time on a given device.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from hubmodels.inversion.encoders import LUMA_601  # grey for contrast and saturation

if TYPE_CHECKING:
    from hubmodels.inversion.encoders import ImageEncoder

_PAIRS = ("crop_scale", "scale")


@dataclass(frozen=True)
class AugmentConfig:
    """How the n views of an image are drawn (docs/methods.md 4.6).

    Attributes:
        n: views per image.
        crop_scale: (min, max) area of the random square crop, as a fraction of the image; the
            crop always lies inside the image.
        shear_degrees: horizontal shear drawn uniformly from +-shear_degrees.
        scale: (min, max) zoom about the crop centre (> 1 zooms in); zoomed-out views fill the
            border by reflection.
        brightness, contrast, saturation: jitter strengths j; each view's factor is drawn from
            [max(0, 1 - j), 1 + j] (saturation only for 3-channel images).
        noise_std: standard deviation of the Gaussian pixel noise, on the [0, 1] scale.
    """

    n: int = 16
    crop_scale: tuple[float, float] = (0.6, 1.0)
    shear_degrees: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1
    noise_std: float = 0.01

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"n (views per image) must be a positive integer, got {self.n!r}")
        for name in _PAIRS:
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or len(value) != 2:
                raise ValueError(f"{name} must be a pair (min, max), got {value!r}")
            lo, hi = (float(v) for v in value)
            if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
                raise ValueError(f"{name} must satisfy 0 < min <= max, got {value!r}")
            object.__setattr__(self, name, (lo, hi))  # JSON lists become tuples again
        if self.crop_scale[1] > 1:
            raise ValueError(f"crop_scale is an area fraction <= 1, got {self.crop_scale!r}")
        if not (math.isfinite(self.shear_degrees) and 0 <= self.shear_degrees < 90):
            raise ValueError(f"shear_degrees must be in [0, 90), got {self.shear_degrees!r}")
        for name in ("brightness", "contrast", "saturation", "noise_std"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (pairs as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        """The inverse of ``to_dict``; unknown keys are an error, not silently dropped."""
        if not isinstance(data, dict):
            raise ValueError(f"an augmentation config is a dict, got {type(data).__name__}")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown augmentation settings {unknown}")
        return cls(**data)


def _uniform(lo: float, hi: float, n: int, generator: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=generator)


def _grey(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] != 3:
        return x.mean(dim=1, keepdim=True)
    luma = torch.tensor(LUMA_601, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * luma).sum(dim=1, keepdim=True)


def _pixel_noise(views: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """N(0, 1) noise shaped like ``views``, drawn on their device.

    On the CPU it comes straight from ``generator``. Elsewhere a device generator is seeded from
    it: drawing millions of normals on the CPU and copying them over every step would cost a GPU
    step more than the views themselves. A seed then reproduces per device, not across devices
    (GPU kernels are not bit-reproducible across devices anyway).
    """
    if views.device.type == "cpu":
        return torch.randn(views.shape, generator=generator, dtype=views.dtype)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    device_generator = torch.Generator(views.device).manual_seed(seed)
    return torch.randn(
        views.shape, generator=device_generator, device=views.device, dtype=views.dtype
    )


def augment(
    images: torch.Tensor, config: AugmentConfig, size: int, generator: torch.Generator
) -> torch.Tensor:
    """n random views of each image: (B, C, H, W) in [0, 1] -> (B * n, C, size, size) in [0, 1].

    Row ``b * n + k`` is view k of image b. Each view is a random square crop inside the image
    (area fraction from ``crop_scale``), sheared and zoomed about its centre, resampled to
    ``size`` bilinearly (one ``grid_sample`` for the whole batch), then brightness, contrast and
    saturation jitter, Gaussian noise, and a clamp to [0, 1]. Differentiable w.r.t. ``images``.
    ``generator`` must be a CPU generator; the small geometric and colour draws are moved to the
    images' device, the pixel noise is drawn there (see ``_pixel_noise``).
    """
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(
            f"expected float images (B, C, H, W) in [0, 1], got {tuple(images.shape)} "
            f"of {images.dtype}"
        )
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    b, c = images.shape[:2]
    m = b * config.n
    device, dtype = images.device, images.dtype

    # Geometry, in grid_sample's normalised coordinates ([-1, 1] spans the image): an output
    # point u maps to the input point centre + half * (shear @ u) / zoom.
    half = _uniform(*config.crop_scale, m, generator).sqrt()  # side = sqrt(area), half of 2
    centre = (torch.rand(m, 2, generator=generator) * 2 - 1) * (1 - half)[:, None]  # inside
    zoom = _uniform(*config.scale, m, generator)
    angle = _uniform(-config.shear_degrees, config.shear_degrees, m, generator)
    shear = torch.tan(torch.deg2rad(angle))
    s = half / zoom
    theta = torch.zeros(m, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 1] = s, s * shear, s
    theta[:, :, 2] = centre
    grid = F.affine_grid(theta.to(device, dtype), [m, c, size, size], align_corners=False)
    # Reflection, not zeros: no black borders for the encoder to key on, and every output pixel
    # depends on the image, so every one passes gradient back.
    views = F.grid_sample(
        images.repeat_interleave(config.n, dim=0),
        grid,
        mode="bilinear",
        padding_mode="reflection",
        align_corners=False,
    )

    # Colour jitter with per-view factors, in a fixed order (brightness, contrast, saturation).
    def factors(strength: float) -> torch.Tensor:
        f = _uniform(max(0.0, 1 - strength), 1 + strength, m, generator)
        return f.to(device, dtype).view(m, 1, 1, 1)

    views = views * factors(config.brightness)
    mean = _grey(views).mean(dim=(2, 3), keepdim=True)
    views = (views - mean) * factors(config.contrast) + mean
    if c == 3:
        grey = _grey(views)
        views = (views - grey) * factors(config.saturation) + grey
    if config.noise_std > 0:
        views = views + config.noise_std * _pixel_noise(views, generator)
    return views.clamp(0.0, 1.0)


def averaged_embedding(
    encoder: ImageEncoder,
    images: torch.Tensor,
    config: AugmentConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """The augmentation-averaged embedding e* (B, d) on the unit sphere (docs/methods.md 4.6).

    ``e* = normalise( mean_k normalise( theta(aug_k(x)) ) )``: each view's embedding is projected
    onto the sphere *before* averaging (the paper's formula, docs/methods.md 4.6, averages raw
    embeddings). CLIP-style encoders carry meaning in direction only, and a view whose embedding
    happens to be long would otherwise outweigh the others. The n * B views go through
    ``encoder.encode_image`` in one call. Differentiable w.r.t. ``images``.
    """
    b = images.shape[0]
    views = augment(images, config, encoder.input_size, generator)
    emb = F.normalize(encoder.encode_image(views), dim=-1)
    return F.normalize(emb.view(b, config.n, -1).mean(dim=1), dim=-1)
