"""The layer-wise Gaussian learning-rate sweep: coarse-to-fine inversion of a FINER INR.

docs/methods.md 4.3. At step t one layer c(t) gets the peak rate and the others a Gaussian of their
distance (in layer index) from it, with c(t) moving linearly from ``start_layer`` to the last
layer over the run:

    c(t)   = start_layer + (L - 1 - start_layer) * t / (T - 1)
    lr_l   = lr_max * exp(-(l - c(t))^2 / (2 s^2))            for l >= start_layer
    lr_l   = 0                                                 for l <  start_layer
    lr_L-1 = max(lr_L-1, output_floor * lr_max)                (the output linear layer)

Shallow FINER layers carry layout and deep ones detail (4.2), so the sweep settles the layout
before the detail; without it stripe artefacts appear (FID 107.1 -> 185.1, the paper's most
important component). ``start_layer > 0`` freezes the shallow layers, as editing and style
transfer need (4.7), and the output floor lets colours adapt at any time.

Implementation (4.3): one optimiser parameter group per entry of ``FinerNet.layers``
(``layer_param_groups``) and every group's ``lr`` overwritten each step (``LayerSweep``).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from hubmodels.inversion.finer import FinerNet

__all__ = ["LayerSweep", "gaussian_layer_rates", "layer_param_groups"]


def _check_int(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_sweep(
    total_steps: int,
    num_layers: int,
    lr_max: float,
    width: float,
    start_layer: int,
    output_floor: float,
) -> None:
    _check_int("total_steps", total_steps, 1)
    _check_int("num_layers", num_layers, 1)
    if not math.isfinite(lr_max) or lr_max <= 0:
        raise ValueError(f"lr_max must be a finite positive number, got {lr_max}")
    if not math.isfinite(width) or width <= 0:
        raise ValueError(
            f"width (the Gaussian's std, in layers) must be finite and > 0, got {width}"
        )
    _check_int("start_layer", start_layer, 0)
    if start_layer > num_layers - 1:
        raise ValueError(
            f"start_layer must be at most num_layers - 1 = {num_layers - 1}, got {start_layer}"
        )
    if not 0 <= output_floor <= 1:
        raise ValueError(f"output_floor is a fraction of lr_max in [0, 1], got {output_floor}")


def gaussian_layer_rates(
    step: int,
    total_steps: int,
    num_layers: int,
    lr_max: float,
    width: float = 1.0,
    start_layer: int = 0,
    output_floor: float = 0.1,
) -> list[float]:
    """Per-layer learning rates at 0-based ``step`` of ``total_steps`` (formulas in the docstring).

    ``width`` is the Gaussian's standard deviation s in layers; ``output_floor`` is a fraction
    of ``lr_max``. A one-step run keeps the peak at ``start_layer``.
    """
    _check_sweep(total_steps, num_layers, lr_max, width, start_layer, output_floor)
    _check_int("step", step, 0)
    if step >= total_steps:
        raise ValueError(f"step is 0-based and must be < total_steps = {total_steps}, got {step}")
    progress = step / (total_steps - 1) if total_steps > 1 else 0.0
    centre = start_layer + (num_layers - 1 - start_layer) * progress
    rates = [0.0] * start_layer  # frozen: the sweep is restricted to the deeper layers
    rates += [
        lr_max * math.exp(-((layer - centre) ** 2) / (2 * width**2))
        for layer in range(start_layer, num_layers)
    ]
    rates[-1] = max(rates[-1], output_floor * lr_max)
    return rates


def layer_param_groups(net: FinerNet) -> list[dict[str, Any]]:
    """One optimiser group ``{"params": [...], "layer": i}`` per entry of ``net.layers``."""
    return [
        {"params": list(layer.parameters()), "layer": index}
        for index, layer in enumerate(net.layers)
    ]


class LayerSweep:
    """Drives an optimiser built on ``layer_param_groups``: ``apply(step)`` sets every group's lr.

    The number of layers is the number of parameter groups, which must be in layer order (when
    the groups carry the ``"layer"`` key, it is checked).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        total_steps: int,
        lr_max: float,
        width: float = 1.0,
        start_layer: int = 0,
        output_floor: float = 0.1,
    ) -> None:
        groups = optimizer.param_groups
        layers = [group.get("layer") for group in groups]
        if any(layer is not None for layer in layers) and layers != list(range(len(groups))):
            raise ValueError(
                f"the optimiser's groups must be one per layer in depth order (layer 0, 1, ...), "
                f"got layers {layers}; build it on layer_param_groups(net)"
            )
        _check_sweep(total_steps, len(groups), lr_max, width, start_layer, output_floor)
        self.optimizer = optimizer
        self.total_steps = total_steps
        self.lr_max = lr_max
        self.width = width
        self.start_layer = start_layer
        self.output_floor = output_floor

    @property
    def num_layers(self) -> int:
        return len(self.optimizer.param_groups)

    def rates(self, step: int) -> list[float]:
        """The rates ``apply(step)`` would set, without setting them."""
        return gaussian_layer_rates(
            step,
            self.total_steps,
            self.num_layers,
            self.lr_max,
            width=self.width,
            start_layer=self.start_layer,
            output_floor=self.output_floor,
        )

    def apply(self, step: int) -> list[float]:
        """Overwrite each group's lr with its rate at 0-based ``step``; return the rates."""
        rates = self.rates(step)
        for group, rate in zip(self.optimizer.param_groups, rates, strict=True):
            group["lr"] = rate
        return rates
