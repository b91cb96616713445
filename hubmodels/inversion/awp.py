"""Robust anchors: fit a FINER INR to a blurred image under adversarial weight perturbation.

docs/methods.md 4.4. The anchor's weights are where inversion starts, so they should sit in a flat
region of the loss landscape that encodes a stable low-frequency layout:

    min_phi  max_{||Delta_l|| <= gamma ||phi_l||}  || f_{phi + Delta}(coords) - blur(x) ||^2

One AWP step per iteration (Wu et al. 2020):

1. loss at phi, gradient g_l of every weight matrix l;
2. Delta_l = gamma * ||phi_l|| * g_l / ||g_l||  (layer-wise, relative; zero-norm g_l skipped);
3. loss at phi + Delta, backward, restore phi exactly, Adam step with that gradient.

As in AWP, only weight matrices are perturbed, not biases (and never the inputs). gamma = 0 is
the "no AWP" ablation: plain fitting with one forward/backward per step. The loss is the mean
squared error in [0, 1] pixel units between ``(f + 1) / 2`` (``render``'s mapping, unclamped so
no gradient is cut) and the blurred image, at the image's own resolution.

The fit is of a continuous image, not of one lattice: each step samples the INR on the pixel
grid shifted by a random sub-pixel offset, and the blurred target there bilinearly (exact
enough: the blur leaves nothing finer than a pixel). Anchors are fitted small (64 px) and
rendered large (224 px); fitted on the lattice alone, a FINER is free to oscillate between its
points, and the lattice shows through as a regular texture in the larger rendering.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from hubmodels.inversion.finer import FinerNet

__all__ = ["fit_anchor", "gaussian_blur"]

Callback = Callable[[int, float], None]
_RANGE_SLACK = 1e-4  # how far outside [0, 1] an image may stray by rounding alone


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of (N, C, H, W) with std ``sigma`` in pixels, reflect padding (torchvision's).

    The kernel radius is ceil(3 sigma), cut to side - 1 on images too small for it (reflect
    padding needs less than a side); the kernel is normalised, so flat regions stay flat.
    ``sigma == 0`` returns the input itself.
    """
    if image.dim() != 4:
        raise ValueError(f"image must have shape (N, C, H, W), got {tuple(image.shape)}")
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma}")
    if sigma == 0:
        return image
    height, width = image.shape[2:]
    radius = math.ceil(3 * sigma)
    sizes = [2 * min(radius, width - 1) + 1, 2 * min(radius, height - 1) + 1]  # (x, y)
    return TF.gaussian_blur(image, kernel_size=sizes, sigma=[sigma, sigma])


def _check_fit_arguments(
    net: FinerNet, image: torch.Tensor, steps: int, lr: float, gamma: float, blur_sigma: float
) -> None:
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a finite positive number, got {lr}")
    if not math.isfinite(gamma) or gamma < 0:
        raise ValueError(
            f"gamma (the relative perturbation radius) must be finite and >= 0, got {gamma}"
        )
    if not math.isfinite(blur_sigma) or blur_sigma < 0:
        raise ValueError(f"blur_sigma must be a finite number >= 0 (pixels), got {blur_sigma}")
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[0] != 1:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"image must be a tensor of shape (1, C, H, W), got {shape}")
    channels = net.config.out_channels
    if image.shape[1] != channels:
        raise ValueError(f"image has {image.shape[1]} channels but the INR renders {channels}")
    if not image.is_floating_point() or not torch.isfinite(image).all():
        raise ValueError("image must be a finite floating-point tensor")
    # A little slack for rounding (area resizing can land at 1 + 1e-7); real overshoot, e.g. from
    # bicubic resizing, is the caller's to clamp.
    if image.min() < -_RANGE_SLACK or image.max() > 1 + _RANGE_SLACK:
        raise ValueError(
            f"image must be in [0, 1], got values in [{image.min().item()}, {image.max().item()}]"
        )


def fit_anchor(
    net: FinerNet,
    image: torch.Tensor,
    *,
    steps: int = 500,
    lr: float = 5e-4,
    gamma: float = 5e-3,
    blur_sigma: float = 3.0,
    continuous: bool = True,
    seed: int = 0,
    callback: Callback | None = None,
) -> list[float]:
    """Fit ``net`` in place to ``blur(image)`` with one AWP step per Adam step (docstring above).

    ``image`` is (1, C, H, W) in [0, 1] with C = ``net.config.out_channels``; it is moved to the
    net's device and dtype. ``gamma`` is the layer-wise relative radius (0: no AWP),
    ``blur_sigma`` the target blur in pixels. ``continuous`` samples a freshly shifted grid
    each step (drawn from ``seed``); False fits the pixel lattice only, as FINER's own image
    fitting does. Returns the per-step loss at phi + Delta (at phi when gamma = 0);
    ``callback(step, loss)`` is called with 1-based steps.
    """
    _check_fit_arguments(net, image, steps, lr, gamma, blur_sigma)
    weight = next(net.parameters())
    height, width = image.shape[-2:]
    with torch.no_grad():
        blurred = gaussian_blur(image.to(weight.device, weight.dtype), blur_sigma)
    lattice = net.coordinates(height, width)
    spacing = lattice.new_tensor([2.0 / max(height - 1, 1), 2.0 / max(width - 1, 1)])
    generator = torch.Generator().manual_seed(seed)
    # AWP perturbs weight matrices only (Wu et al. 2020 skip biases and norm parameters).
    matrices = [p for p in net.parameters() if p.dim() > 1 and p.requires_grad]
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)

    def samples() -> tuple[torch.Tensor, torch.Tensor]:
        """Coordinates and the blurred image's values there, (P, 2) and (P, C)."""
        if not continuous:
            return lattice, blurred[0].permute(1, 2, 0).reshape(height * width, -1)
        coords = lattice + (torch.rand(2, generator=generator) - 0.5).to(lattice) * spacing
        # grid_sample reads (x, y) = (col, row); the grid's endpoints are pixel centres.
        grid = coords.flip(-1).view(1, height, width, 2)
        values = F.grid_sample(
            blurred, grid, mode="bilinear", padding_mode="border", align_corners=True
        )
        return coords, values[0].permute(1, 2, 0).reshape(height * width, -1)

    def loss_at(coords: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ((net(coords) + 1) / 2 - target).pow(2).mean()

    losses = []
    with torch.enable_grad():
        for step in range(1, steps + 1):
            coords, target = samples()  # one sample set for the ascent and the descent
            saved: list[tuple[torch.Tensor, torch.Tensor]] = []
            if gamma > 0 and matrices:
                grads = torch.autograd.grad(loss_at(coords, target), matrices)
                with torch.no_grad():
                    for p, g in zip(matrices, grads, strict=True):
                        g_norm = g.norm()
                        # A zero gradient has no ascent direction: that layer is left alone.
                        # torch.where rather than an `if` keeps the loop free of device syncs.
                        scale = torch.where(g_norm > 0, gamma * p.norm() / g_norm, 0.0)
                        saved.append((p, p.detach().clone()))
                        p.add_(g * scale)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_at(coords, target)
            loss.backward()
            with torch.no_grad():
                for p, original in saved:
                    p.copy_(original)  # exact restore: phi + Delta - Delta could round off
            optimizer.step()
            losses.append(loss.detach())
            if callback is not None:
                callback(step, loss.item())
    return torch.stack(losses).tolist()
