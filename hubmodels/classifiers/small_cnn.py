"""A small CNN for 28x28 images (Fashion-MNIST, MNIST), cheap enough to train on a laptop CPU.

The shape follows the "SmallCNN" that TRADES (Zhang et al. 2019) and later adversarial-training
work use for MNIST: two conv blocks of two 3x3 convolutions (32 then 64 channels), each closed by
a 2x2 max-pool, then a 200-200 MLP and a linear head. Two changes make it a better fit here:

* BatchNorm after every convolution, so a few CPU epochs reach a useful accuracy;
* "same" padding, so any image size divisible by 4 works and the flatten size is simply
  64 * (image_size / 4)^2 (3136 for 28x28).

There is no dropout: attacks and energy-based sampling need a deterministic eval-mode forward.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    # Bias-free conv: the BatchNorm shift makes a conv bias redundant.
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """Conv(32w)x2 - pool - conv(64w)x2 - pool - MLP(hidden, hidden) - linear, w = ``width``;
    ``feature_dim`` is ``hidden_dim`` (200 by default)."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 28,
        hidden_dim: int = 200,
        width: int = 1,
    ) -> None:
        super().__init__()
        if image_size <= 0 or image_size % 4 != 0:
            raise ValueError(f"SmallCNN needs an image size divisible by 4, got {image_size}")
        self.num_classes = num_classes
        self.image_size = image_size
        c1, c2 = 32 * width, 64 * width
        self.body = nn.Sequential(
            _conv_bn_relu(in_channels, c1),
            _conv_bn_relu(c1, c1),
            nn.MaxPool2d(2),
            _conv_bn_relu(c1, c2),
            _conv_bn_relu(c2, c2),
            nn.MaxPool2d(2),
        )
        # Padding keeps the size through each conv, so only the two pools shrink it.
        flat_dim = c2 * (image_size // 4) ** 2
        self.mlp = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat_dim, hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(inplace=True),
        )
        self.feature_dim = hidden_dim
        self.head = nn.Linear(hidden_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate representation (N, hidden_dim): the second hidden Linear + ReLU."""
        return self.mlp(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
