"""Registry of classifier backbones, by the names that configs and Hub cards use.

Every entry builds an ``nn.Module`` from ``num_classes``, ``in_channels`` and ``image_size`` and
offers ``forward(x) -> logits``, ``features(x) -> (N, feature_dim)`` and ``head`` with
``forward(x) == head(features(x))``. Inputs arrive already normalised: RobustClassifier applies
the dataset normalisation (none for WEAT, docs/methods.md 2.5) before calling the backbone.

* ``resnet18``        CIFAR ResNet-18, WEAT's default (He et al. 2016; WEAT sec. 5)
* ``preact_resnet18`` PreActResNet-18 (He et al. 2016 identity mappings; Rice et al. 2020)
* ``wrn-28-10``       WideResNet-28-10 (Zagoruyko & Komodakis 2016)
* ``wrn-34-10``       WideResNet-34-10, the TRADES / RobustBench CIFAR reference
* ``small_cnn``       small CNN for 28x28 inputs, trainable on CPU
* ``small_cnn_wide``  the same with a 1024-wide MLP: six times the parameters (4.3M) for about
                      the same step time, so it memorises a small training subset (robust
                      overfitting on a CPU)
"""

from __future__ import annotations

from functools import partial

import torch.nn as nn

from hubmodels.classifiers.preact_resnet import PreActResNet18
from hubmodels.classifiers.resnet import ResNet18
from hubmodels.classifiers.small_cnn import SmallCNN
from hubmodels.classifiers.wide_resnet import WideResNet
from hubmodels.registry import Registry

# Values are constructors, not instances: nothing is built until build_backbone is called.
ARCHITECTURES = Registry(
    "architecture",
    {
        "resnet18": ResNet18,
        "preact_resnet18": PreActResNet18,
        "wrn-28-10": partial(WideResNet, depth=28, widen_factor=10),
        "wrn-34-10": partial(WideResNet, depth=34, widen_factor=10),
        "small_cnn": SmallCNN,
        "small_cnn_wide": partial(SmallCNN, hidden_dim=1024),
    },
)


def build_backbone(
    architecture: str, num_classes: int, in_channels: int, image_size: int
) -> nn.Module:
    """Build the backbone registered as ``architecture``; ValueError names the known ones."""
    constructor = ARCHITECTURES.lookup(architecture)
    return constructor(num_classes=num_classes, in_channels=in_channels, image_size=image_size)
