"""Wide residual networks: WRN-28-10 and WRN-34-10, the large robust-training backbones.

Zagoruyko & Komodakis 2016, "Wide Residual Networks", trade depth for width: three groups of
pre-activation blocks (BN-ReLU-conv3x3, twice) with 16k, 32k and 64k channels after a 16-channel
stem, where k is the widening factor and each group holds (depth - 4) / 6 blocks. The depth
counts the stem, two convs per block and the head (the 1x1 projections are not counted).

WRN-34-10 is the TRADES / RobustBench CIFAR-10 reference and WEAT's AutoAttack script builds it;
WEAT's C&W script builds WRN-28-10 (docs/methods.md 2.5). A final BN-ReLU, a global adaptive average
pool (equal to the usual 8x8 pool on 32x32 inputs) and a linear head close the network.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class WideBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3x3 (strided), BN-ReLU-[dropout]-conv3x3, plus shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.drop_rate = drop_rate
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        # When the shape changes the projection reads the activated input; otherwise the
        # shortcut is the untouched identity, which is the point of pre-activation.
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = F.relu(self.bn2(self.conv1(out)))
        # Dropout is off by default; F.dropout is the identity in eval mode, so attacks on an
        # eval-mode model stay deterministic either way.
        out = F.dropout(out, p=self.drop_rate, training=self.training)
        return self.conv2(out) + shortcut


class WideResNet(nn.Module):
    """WRN-depth-k; ``feature_dim`` is 64k (640 for k = 10).

    ``image_size`` is accepted for the shared backbone contract; the adaptive pool makes the
    network independent of it.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 32,
        depth: int = 28,
        widen_factor: int = 10,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError(f"WideResNet depth must be 6n + 4 with n >= 1, got {depth}")
        n_blocks = (depth - 4) // 6
        self.num_classes = num_classes
        self.image_size = image_size
        self.depth = depth
        self.widen_factor = widen_factor
        widths = (16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        strides = (1, 2, 2)

        self.stem = nn.Conv2d(in_channels, 16, 3, stride=1, padding=1, bias=False)
        groups: list[nn.Module] = []
        in_planes = 16
        for planes, stride in zip(widths, strides, strict=True):
            blocks = []
            for i in range(n_blocks):
                blocks.append(WideBlock(in_planes, planes, stride if i == 0 else 1, drop_rate))
                in_planes = planes
            groups.append(nn.Sequential(*blocks))
        self.groups = nn.Sequential(*groups)
        # Blocks end on a bare addition, so the trunk is normalised and activated once here.
        self.final_bn = nn.BatchNorm2d(in_planes)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = in_planes
        self.head = nn.Linear(in_planes, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # The initialisation of the WRN paper's code, which the TRADES-style training recipes
        # assume: He-normal convs (fan-out), unit BN scale, zero biases.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate representation (N, 64k): pooled, activated output of the last group."""
        out = F.relu(self.final_bn(self.groups(self.stem(x))))
        return torch.flatten(self.pool(out), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
