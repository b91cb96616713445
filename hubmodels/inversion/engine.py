"""The optimisation loop of CLIP^-1, shared by every task, benchmark and bank build.

``InversionEngine`` optimises the weights phi of a FINER network (never pixels) so that the
frozen encoder's augmentation-averaged embedding e*(phi) of the rendering approaches weighted
targets (docs/methods.md 4.6):

    phi <- phi - lr_l(t) * grad_phi  sum_i w_i (1 - cos(e*(phi), t_i))

with one Adam group per INR layer and the layer-wise Gaussian learning-rate sweep lr_l(t) from
shallow (layout) to deep (detail) layers (docs/methods.md 4.3). What the targets, weights and
start are is the task's business (``CLIPInverter``); this module only runs the loop:

    engine = InversionEngine(encoder, INRConfig(), AugmentConfig(), resolution=64)
    target = engine.image_embedding(photo)
    result = engine.optimise(engine.new_net(seed=0), [(target, 1.0)], steps=100, seed=0)
    result.image, result.losses
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import torch

from hubmodels.images import load_image
from hubmodels.inversion.augment import AugmentConfig, averaged_embedding
from hubmodels.inversion.encoders import ImageEncoder
from hubmodels.inversion.finer import FinerNet, INRConfig
from hubmodels.inversion.procrustes import cosine_distance
from hubmodels.inversion.schedule import LayerSweep, layer_param_groups
from hubmodels.outputs import Callback

# (target embedding, weight): a positive weight attracts, a negative one repels
Target = tuple[torch.Tensor, float]


@dataclass
class OptimisationResult:
    """The final rendering (1, 3, resolution, resolution) in [0, 1] and the loss of each step."""

    image: torch.Tensor
    losses: list[float]


@dataclass
class InversionEngine:
    """Optimise FINER networks toward targets in a frozen encoder's embedding space.

    Args:
        encoder: the frozen image encoder (``load_encoder``); put it on ``device`` first.
        inr: the FINER network's shape; augment: the augmentations averaged over (4.6).
        resolution: side of the final rendering, in pixels.
        render_resolution: side of the grid rendered while optimising (capped at
            ``resolution``; None: ``resolution``); a random sub-pixel shift each step keeps the
            points between its grid lines optimised too.
        lr, sweep_width, output_floor: the layer sweep's peak rate, Gaussian width in layers,
            and the share of ``lr`` the output layer always keeps (4.3).
        device: where nets are built and targets compared.
    """

    encoder: ImageEncoder = field(repr=False)
    inr: INRConfig
    augment: AugmentConfig
    _: KW_ONLY
    resolution: int
    render_resolution: int | None = None
    lr: float = 1e-4
    sweep_width: float = 1.0
    output_floor: float = 0.1
    device: torch.device | str = "cpu"

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)

    def replace(self, **changes: Any) -> InversionEngine:
        """A copy with some settings changed (``inr``, ``lr``, ``render_resolution``, ...); the
        encoder is shared, not copied. For ablations and timings of one setting."""
        known = [f.name for f in dataclasses.fields(self) if f.name not in ("encoder", "device")]
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise TypeError(f"unknown engine settings {unknown}; known: {known}")
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ starts and targets
    def new_net(self, seed: int) -> FinerNet:
        """A freshly initialised FINER network, the same for the same seed."""
        with torch.random.fork_rng(devices=[]):  # a seeded init without touching global state
            torch.manual_seed(seed)
            net = FinerNet(self.inr)
        return net.to(self.device)

    def net_from_state(self, state: dict[str, torch.Tensor]) -> FinerNet:
        """A FINER network holding ``state`` (an anchor of the bank, 4.4)."""
        net = FinerNet(self.inr)
        net.load_state_dict(state, strict=True)
        return net.to(self.device)

    def image_embedding(self, image: Any) -> torch.Tensor:
        """Unit embedding of an image (anything ``load_image`` reads): the mean over a fixed set
        of augmentations, so the target lives in the same augmented space as the renderings it
        is compared with."""
        x = load_image(image).to(self.device)
        with torch.no_grad():
            return self.averaged_embedding(x, torch.Generator().manual_seed(0))[0]

    def averaged_embedding(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """e*(image): the encoder's unit embedding averaged over augmentations (4.6)."""
        # bf16 autocast for the encoder only: the INR's sines at omega 30 need fp32 arguments.
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if self.device.type == "cuda"
            else contextlib.nullcontext()
        )
        with autocast:
            embedding = averaged_embedding(self.encoder, image, self.augment, generator)
        return embedding.float()

    # ------------------------------------------------------------------ the loop
    def optimise(
        self,
        net: FinerNet,
        targets: Sequence[Target],
        *,
        steps: int,
        seed: int,
        start_layer: int = 0,
        callback: Callback | None = None,
        preview_every: int = 10,
    ) -> OptimisationResult:
        """Optimise ``net`` in place toward the weighted ``targets``; the loop of the module
        docstring. ``start_layer``: the first layer the sweep may change (style transfer keeps
        the layout-carrying shallow layers frozen). ``seed`` seeds the augmentations;
        ``callback(step, rendering, {"loss": ...})`` every ``preview_every`` steps."""
        if preview_every < 1:
            raise ValueError(f"preview_every must be positive, got {preview_every}")
        if steps < 1:
            raise ValueError(f"steps must be positive, got {steps}")
        goals = torch.stack([t.reshape(-1) for t, _ in targets]).to(self.device)
        weights = torch.tensor([w for _, w in targets], device=self.device)
        optimizer = torch.optim.Adam(layer_param_groups(net), lr=self.lr)
        sweep = LayerSweep(
            optimizer,
            steps,
            lr_max=self.lr,
            width=self.sweep_width,
            start_layer=start_layer,
            output_floor=self.output_floor,
        )
        generator = torch.Generator().manual_seed(seed + 1)  # the augmentations' stream
        size = self.resolution
        grid = min(self.render_resolution or size, size)
        losses = []
        for step in range(steps):
            sweep.apply(step)
            # On a grid coarser than the output, a fresh sub-pixel shift each step: the points
            # between grid lines, which the final render shows, are optimised too. The shift
            # moves the image by under one grid pixel, a translation the random crops dwarf.
            shift = torch.rand(2, generator=generator) - 0.5 if grid < size else None
            image = net.render(grid, grid, shift)
            embedding = self.averaged_embedding(image, generator)
            loss = (weights * cosine_distance(embedding, goals)).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
            done = step + 1
            if done % preview_every == 0 or done == steps:
                value = float(loss.detach())  # one device sync per preview, not per step
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"the loss became {value} at step {done}; lower lr (now {self.lr})"
                    )
                if callback is not None:
                    callback(done, image.detach(), {"loss": value})
        with torch.no_grad():
            final = net.render(size, size)
        return OptimisationResult(image=final, losses=torch.stack(losses).float().cpu().tolist())
