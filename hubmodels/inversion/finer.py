"""FINER: the frequency-aware implicit neural representation that CLIP^-1 renders images with.

docs/methods.md 4.2. An image is a function of its pixel coordinates, (row, col) in [-1, 1]^2,
computed by a stack of sine layers and a final linear layer. A FINER layer is

    z = W x + b,    alpha = |z| + 1  (detached: FINER's scale_req_grad = False),
    y = sin(omega * alpha * z)

so the local frequency grows with the pre-activation magnitude; SIREN, the baseline, is the
special case alpha = 1. FINER spreads the first layer's bias over U(-k, k) (k =
``first_bias_scale``), hence the pre-activation magnitudes, hence the frequencies. CLIP^-1 uses
this to stratify frequencies across depth: shallow layers carry layout, deep layers detail, and
the layer-wise learning-rate sweep (``schedule``) walks from one to the other.

Initialisation (SIREN/FINER): first layer weights U(-1/fan_in, 1/fan_in); hidden and output
weights U(-sqrt(6/fan_in)/omega, sqrt(6/fan_in)/omega). Biases other than FINER's first one use
their layer's weight bound (a choice of ours: FINER leaves them at PyTorch's default).

The network output is raw; ``render`` maps it to [0, 1] with ``((out + 1) / 2).clamp(0, 1)``,
deep-daze's mapping, so a target image in [0, 1] corresponds to raw targets in [-1, 1] as in
FINER's image fitting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable

__all__ = ["ACTIVATIONS", "FinerLayer", "FinerNet", "INRConfig", "coordinate_grid"]

ACTIVATIONS = ("finer", "siren")
_GRID_CACHE_SIZE = 8  # renders use one or two resolutions; the bound only stops leaks


@dataclass(frozen=True)
class INRConfig:
    """Architecture of a FINER (or SIREN) image INR; JSON-able, it round-trips via config.json.

    ``hidden_layers`` counts the sine layers after the first (so 1 + hidden_layers sine layers),
    ``width`` their units, ``omega`` the frequency factor omega_0 of every sine layer,
    ``first_bias_scale`` the FINER first-layer bias bound k, ``out_channels`` the image channels,
    ``output_scale`` a factor on the output layer's initial bound (1: SIREN's).
    """

    hidden_layers: int = 4
    width: int = 256
    omega: float = 30.0
    first_bias_scale: float = 1.0
    activation: str = "finer"
    out_channels: int = 3
    output_scale: float = 1.0

    def __post_init__(self) -> None:
        # Upper bounds far above any useful INR, so an untrusted config.json cannot make the
        # first request allocate terabytes.
        for name, most in (("hidden_layers", 64), ("width", 8192), ("out_channels", 4)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
                raise ValueError(f"{name} must be a whole number in [1, {most}], got {value!r}")
        for name in ("omega", "first_bias_scale", "output_scale"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value!r}")
            object.__setattr__(self, name, float(value))  # 30 from JSON -> 30.0, same config
        if self.omega <= 0:
            raise ValueError(f"omega must be positive, got {self.omega}")
        if self.first_bias_scale < 0:
            raise ValueError(f"first_bias_scale must be >= 0, got {self.first_bias_scale}")
        if self.output_scale <= 0:
            raise ValueError(f"output_scale must be positive, got {self.output_scale}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> INRConfig:
        """Strict inverse of ``to_dict``: unknown keys are an error, missing ones take defaults."""
        if not isinstance(d, Mapping):
            raise ValueError(f"INRConfig.from_dict needs a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown INRConfig keys {unknown}; expected some of {sorted(known)}")
        return cls(**d)


def coordinate_grid(
    height: int,
    width: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Pixel coordinates, (height * width, 2) as (row, col), row-major.

    Endpoint convention (FINER's ``linspace(-1, 1, n)``, like ``align_corners=True``): the first
    and last pixel centres sit exactly at -1 and +1. A side of one pixel sits at 0. Reshaping an
    output of shape (height * width, C) to (height, width, C) gives the image.
    """
    for name, value in (("height", height), ("width", width)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    dtype = dtype or torch.get_default_dtype()

    def axis(n: int) -> torch.Tensor:
        if n == 1:  # linspace would put the single pixel at -1; the centre is the fair place
            return torch.zeros(1, device=device, dtype=dtype)
        return torch.linspace(-1.0, 1.0, n, device=device, dtype=dtype)

    rows, cols = torch.meshgrid(axis(height), axis(width), indexing="ij")
    return torch.stack((rows, cols), dim=-1).reshape(height * width, 2)


def _hidden_bound(fan_in: int, omega: float) -> float:
    """SIREN's hidden bound sqrt(6 / fan_in) / omega: omega * W x keeps unit spread at any width."""
    return math.sqrt(6.0 / fan_in) / omega


class _FinerSine(torch.autograd.Function):
    """y = sin(omega * alpha * z), alpha = |z| + 1 held constant, in one fused pass each way.

    Autograd on the plain formula keeps alpha, omega * alpha and the sine's argument for the
    backward pass, and walks memory about ten times per layer: at 224 px that is 50,176 x 256
    floats per walk, and it made the elementwise work, not the matrix product, most of a
    render. Here the forward runs in place on one buffer and saves z alone; the backward
    recomputes omega * alpha from it:

        dy/dz = omega * alpha * cos(omega * alpha * z)      (alpha detached, as in FINER)
    """

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, omega: float) -> torch.Tensor:
        ctx.omega = omega
        ctx.save_for_backward(z)
        return z.abs().add_(1.0).mul_(omega).mul_(z).sin_()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (z,) = ctx.saved_tensors
        scale = z.abs().add_(1.0).mul_(ctx.omega)
        return scale.mul(z).cos_().mul_(scale).mul_(grad), None


class FinerLayer(nn.Module):
    """A linear map followed by FINER's sin(omega (|z| + 1) z), or SIREN's sin(omega z)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        omega: float = 30.0,
        is_first: bool = False,
        activation: str = "finer",
        first_bias_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if not math.isfinite(omega) or omega <= 0:
            raise ValueError(f"omega must be a finite positive number, got {omega}")
        if not math.isfinite(first_bias_scale) or first_bias_scale < 0:
            raise ValueError(
                f"first_bias_scale must be a finite number >= 0, got {first_bias_scale}"
            )
        self.omega = float(omega)
        self.is_first = is_first
        self.activation = activation
        self.linear = nn.Linear(in_features, out_features)
        bound = 1.0 / in_features if is_first else _hidden_bound(in_features, omega)
        with torch.no_grad():
            self.linear.weight.uniform_(-bound, bound)
            if is_first and activation == "finer":
                # FINER's frequency spreading: |z| (hence alpha) varies across units from the start.
                self.linear.bias.uniform_(-first_bias_scale, first_bias_scale)
            else:
                self.linear.bias.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(x)
        if self.activation == "siren":
            return torch.sin(self.omega * z)
        # alpha is a data-dependent frequency scale, not a path for gradients (scale_req_grad
        # False in FINER); _FinerSine computes exactly that, fused.
        return _FinerSine.apply(z, self.omega)

    def extra_repr(self) -> str:
        return f"omega={self.omega}, is_first={self.is_first}, activation={self.activation!r}"


class FinerNet(nn.Module):
    """(row, col) -> colour: 1 + hidden_layers sine layers of ``width`` units, then a linear layer.

    ``layers`` holds every layer in depth order, the output linear included
    (``len(layers) == hidden_layers + 2``): the learning-rate sweep gives one optimiser group
    to each. ``forward`` returns the raw output; ``render`` the image in [0, 1].
    """

    def __init__(self, config: INRConfig) -> None:
        super().__init__()
        if not isinstance(config, INRConfig):
            raise ValueError(f"FinerNet needs an INRConfig, got {type(config).__name__}")
        self.config = config
        sine = dict(
            omega=config.omega,
            activation=config.activation,
            first_bias_scale=config.first_bias_scale,
        )
        layers: list[nn.Module] = [FinerLayer(2, config.width, is_first=True, **sine)]
        layers += [
            FinerLayer(config.width, config.width, **sine) for _ in range(config.hidden_layers)
        ]
        out = nn.Linear(config.width, config.out_channels)
        bound = config.output_scale * _hidden_bound(config.width, config.omega)
        with torch.no_grad():
            out.weight.uniform_(-bound, bound)
            out.bias.uniform_(-bound, bound)
        layers.append(out)
        self.layers = nn.ModuleList(layers)
        # A plain dict, not buffers: grids are derived data and must stay out of state_dict.
        self._grids: dict[tuple[int, int, torch.device, torch.dtype], torch.Tensor] = {}

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """(P, 2) coordinates in [-1, 1]^2 -> (P, out_channels) raw output."""
        if coords.dim() != 2 or coords.shape[-1] != 2:
            raise ValueError(f"coords must have shape (P, 2), got {tuple(coords.shape)}")
        x = coords
        for layer in self.layers:
            x = layer(x)
        return x

    def coordinates(self, height: int, width: int) -> torch.Tensor:
        """The cached ``coordinate_grid`` on this network's device and dtype (do not modify it)."""
        weight = self.layers[0].linear.weight
        key = (height, width, weight.device, weight.dtype)
        grid = self._grids.get(key)
        if grid is None:
            if len(self._grids) >= _GRID_CACHE_SIZE:
                self._grids.pop(next(iter(self._grids)))  # oldest first
            grid = coordinate_grid(height, width, device=weight.device, dtype=weight.dtype)
            self._grids[key] = grid
        return grid

    def render(self, height: int, width: int, shift: torch.Tensor | None = None) -> torch.Tensor:
        """The image at any resolution: (1, out_channels, height, width) in [0, 1].

        ``shift``, a (row, col) pair in units of this grid's pixel spacing, moves every sample
        point by that much: optimising on a coarse grid shifted at random each step (|shift| <=
        0.5) reaches every point of the continuous image, not one lattice of it.
        """
        coords = self.coordinates(height, width)
        if shift is not None:
            if shift.shape != (2,):
                raise ValueError(f"shift is a (row, col) pair, got shape {tuple(shift.shape)}")
            spacing = [2.0 / max(height - 1, 1), 2.0 / max(width - 1, 1)]
            coords = coords + shift.to(coords) * coords.new_tensor(spacing)
        out = self(coords)
        image = out.view(height, width, -1).permute(2, 0, 1).unsqueeze(0)
        return ((image + 1) / 2).clamp(0, 1)
