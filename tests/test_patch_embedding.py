"""A ViT patch embedding as a matrix product: same outputs, same gradients, same weight names."""

import copy
import warnings

import pytest
import torch
from torch import nn

from hubmodels.inversion.encoders import RandomWeightsWarning, load_encoder
from hubmodels.inversion.patch_embedding import (
    PatchEmbedding,
    is_patch_embedding,
    use_matmul_patch_embeddings,
)


@pytest.mark.parametrize(
    ("patch", "bias", "size"),
    [((4, 4), False, (16, 16)), ((2, 3), True, (8, 9)), ((4, 4), True, (18, 15))],
)
def test_matches_the_convolution_and_its_gradients(patch, bias, size):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, kernel_size=patch, stride=patch, bias=bias).double()
    embedding = PatchEmbedding(copy.deepcopy(conv))
    x = torch.randn(2, 3, *size, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn_like(conv(x))  # 18 x 15 drops a partial patch, as the conv does
    expected = torch.autograd.grad((conv(x) * upstream).sum(), [x, *conv.parameters()])
    got = torch.autograd.grad((embedding(x) * upstream).sum(), [x, *embedding.parameters()])
    torch.testing.assert_close(embedding(x), conv(x))
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e)


def test_swaps_only_patch_convolutions_and_keeps_weight_names():
    model = nn.Sequential(
        nn.Conv2d(3, 4, kernel_size=3, padding=1),  # overlapping: a real convolution
        nn.Sequential(nn.Conv2d(4, 6, kernel_size=4, stride=4)),  # a patch embedding
        nn.Conv2d(6, 6, kernel_size=1),  # 1 x 1 is left to the convolution kernels
    )
    keys, weight = list(model.state_dict()), model[1][0].weight
    x = torch.randn(1, 3, 16, 16)
    before = model(x)
    assert use_matmul_patch_embeddings(model) == 1
    assert isinstance(model[1][0], PatchEmbedding) and model[1][0].weight is weight
    assert type(model[0]) is nn.Conv2d and type(model[2]) is nn.Conv2d
    assert list(model.state_dict()) == keys
    torch.testing.assert_close(model(x), before)
    assert not is_patch_embedding(nn.Conv2d(3, 4, kernel_size=4, stride=4, padding=1))
    with pytest.raises(ValueError, match="patch embedding"):
        PatchEmbedding(model[0])


def test_open_clip_encoders_use_it_with_unchanged_embeddings(tiny_clip):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        encoder = load_encoder(tiny_clip, None)
    assert isinstance(encoder.model.visual.conv1, PatchEmbedding)
    reference = copy.deepcopy(encoder)
    swapped = reference.model.visual.conv1
    conv = nn.Conv2d(3, swapped.weight.shape[0], swapped.patch, stride=swapped.patch, bias=False)
    conv.weight = swapped.weight
    reference.model.visual.conv1 = conv
    x = torch.rand(3, 3, 32, 32)
    torch.testing.assert_close(encoder.encode_image(x), reference.encode_image(x))
    assert "model.visual.conv1.weight" in encoder.state_dict()  # open_clip checkpoints load


def test_timm_vits_use_it_and_cnns_are_untouched():
    import timm

    vit, cnn = timm.create_model("test_vit"), timm.create_model("test_efficientnet")
    assert use_matmul_patch_embeddings(vit) == 1
    assert isinstance(vit.patch_embed.proj, PatchEmbedding)
    assert use_matmul_patch_embeddings(cnn) == 0
