"""A ViT's patch embedding as one matrix product: the same map, a cheaper gradient on the CPU.

ViTs embed an image with a convolution whose kernel equals its stride (ViT-B/32: 3 -> 768
channels over 32 x 32 patches), so each output is a linear map of one non-overlapping patch.
Inversion back-propagates to the image through that convolution at every step, and on the CPU
(oneDNN) its input gradient cost about 0.2 s of a 2 s ViT-B/32 forward + backward on 16 views,
ten times its forward. Cut into patches, the map is one matrix product whose input gradient is
another; ``tests/test_patch_embedding.py`` checks the outputs and gradients match the
convolution, and ``bench/inversion_cost.py`` measures the step.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PatchEmbedding", "is_patch_embedding", "use_matmul_patch_embeddings"]


def is_patch_embedding(conv: nn.Module) -> bool:
    """A plain Conv2d whose kernel equals its stride (> 1): disjoint patches, no padding."""
    return (
        type(conv) is nn.Conv2d
        and conv.kernel_size == conv.stride
        and min(conv.kernel_size) > 1
        and conv.padding in ((0, 0), "valid")
        and conv.dilation == (1, 1)
        and conv.groups == 1
    )


class PatchEmbedding(nn.Module):
    """``conv``'s map as patches @ weight; it shares (not copies) ``conv``'s parameters, under
    the same names, so state_dict keys and loaded weights are unchanged."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if not is_patch_embedding(conv):
            raise ValueError(f"not a patch embedding (kernel == stride, no padding): {conv}")
        self.patch = conv.kernel_size
        self.register_parameter("weight", conv.weight)
        self.register_parameter("bias", conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        ph, pw = self.patch
        gh, gw = h // ph, w // pw  # like the convolution, a partial patch at the edge is dropped
        patches = (
            x[..., : gh * ph, : gw * pw]
            .reshape(b, c, gh, ph, gw, pw)
            .permute(0, 2, 4, 1, 3, 5)  # (b, gh, gw, c, ph, pw): the weight's (c, ph, pw) order
            .reshape(b, gh * gw, c * ph * pw)
        )
        weight = self.weight.reshape(self.weight.shape[0], -1)
        out = patches @ weight.T
        if self.bias is not None:
            out = out + self.bias
        return out.view(b, gh, gw, -1).permute(0, 3, 1, 2)  # (b, out, gh, gw), as the conv

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, patch={self.patch}"


def use_matmul_patch_embeddings(model: nn.Module) -> int:
    """Swap every patch-embedding Conv2d inside ``model`` for a ``PatchEmbedding``, in place.

    Returns how many were swapped (0 for a CNN such as EfficientNet, whose strided convolutions
    overlap).
    """
    swaps = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if is_patch_embedding(child)
    ]
    for parent, name, child in swaps:
        setattr(parent, name, PatchEmbedding(child))
    return len(swaps)
