"""CIFAR ResNet-18: the default WEAT backbone (docs/methods.md 2.5; WEAT sec. 5).

The residual network of He et al. 2016, "Deep Residual Learning for Image Recognition", in the
small-image form that adversarial-training papers use for CIFAR: the ImageNet 7x7 stride-2 stem
and its max-pool are replaced by one 3x3 stride-1 convolution, because a 32x32 image has no
resolution to spare. Four stages of two BasicBlocks each (64/128/256/512 channels, strides
1/2/2/2) follow, then a global average pool and a linear head.

WEAT pools with a fixed 4x4 window for CIFAR and an adaptive pool for Tiny-ImageNet
(``ti_ResNet18``). On a 32x32 input the last feature map is exactly 4x4, so one adaptive pool is
the same computation for CIFAR and also serves 28x28 and 64x64 inputs.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 projection) shortcut, ReLU after the sum."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        # Convs carry no bias: the BatchNorm that follows has its own shift.
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        # The shortcut must match the residual's shape; project only when it changes.
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR-style ResNet-18 with an adaptive average pool; ``feature_dim`` is 512.

    ``image_size`` is accepted for the shared backbone contract; the adaptive pool makes the
    network independent of it.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 32,
        blocks_per_stage: tuple[int, int, int, int] = (2, 2, 2, 2),
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.image_size = image_size
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
        )
        widths = (64, 128, 256, 512)
        strides = (1, 2, 2, 2)
        stages: list[nn.Module] = []
        in_planes = 64
        for planes, stride, n_blocks in zip(widths, strides, blocks_per_stage, strict=True):
            # Only the first block of a stage downsamples; the rest keep the resolution.
            blocks = []
            for i in range(n_blocks):
                blocks.append(BasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = in_planes
        self.head = nn.Linear(in_planes, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate representation (N, 512): the pooled output of the last stage."""
        out = self.stages(self.stem(x))
        return torch.flatten(self.pool(out), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
