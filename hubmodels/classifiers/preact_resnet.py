"""PreActResNet-18: the pre-activation residual network used in robust-overfitting studies.

He et al. 2016, "Identity Mappings in Deep Residual Networks", move BatchNorm and ReLU in front of
each convolution so that the shortcut path is a clean identity. The 18-layer CIFAR variant is the
backbone of Rice et al. 2020 ("Overfitting in adversarially robust deep learning") and Wong et al.
2020 ("Fast is better than free"), and is an option in WEAT (docs/methods.md 2.5).

Layout: a 3x3 stride-1 stem, four stages of two pre-activation blocks (64/128/256/512 channels,
strides 1/2/2/2), a final BN-ReLU (the last block's output is not yet activated), a global
adaptive average pool and a linear head.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3, BN-ReLU-conv3x3, added to an identity (or 1x1 projection) shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        # A projection shortcut reads the pre-activated input, so the normalisation is shared by
        # both paths; the raw identity path is kept only when no projection is needed.
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet18(nn.Module):
    """Pre-activation ResNet-18 with an adaptive average pool; ``feature_dim`` is 512.

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
        # No BN-ReLU after the stem: the first block pre-activates its input itself.
        self.stem = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        widths = (64, 128, 256, 512)
        strides = (1, 2, 2, 2)
        stages: list[nn.Module] = []
        in_planes = 64
        for planes, stride, n_blocks in zip(widths, strides, blocks_per_stage, strict=True):
            blocks = []
            for i in range(n_blocks):
                blocks.append(PreActBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        # Blocks end on a bare addition, so the trunk is normalised and activated once here.
        self.final_bn = nn.BatchNorm2d(in_planes)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = in_planes
        self.head = nn.Linear(in_planes, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate representation (N, 512): the pooled, activated output of the last stage."""
        out = F.relu(self.final_bn(self.stages(self.stem(x))))
        return torch.flatten(self.pool(out), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
