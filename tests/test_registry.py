"""Everything looked up by name is a Registry, listed by one function each."""

import pytest

import hubmodels
from hubmodels.registry import Registry


def test_a_registry_registers_once_and_names_the_known_on_a_miss():
    shapes = Registry("shape", {"square": 4})
    assert shapes.register("triangle", 3) == 3

    @shapes.register("circle")
    def circle():
        return 0

    assert shapes["circle"] is circle and shapes.names() == ["circle", "square", "triangle"]
    with pytest.raises(ValueError, match="shape 'square' is registered already"):
        shapes.register("square", 5)
    with pytest.raises(ValueError, match="unknown shape 'hexagon'; known: circle, square"):
        shapes.lookup("hexagon")


def test_every_registry_is_listed():
    assert {"small_cnn", "resnet18", "wrn-34-10"} <= set(hubmodels.list_architectures())
    assert {"fashion-mnist", "cifar10", "imagefolder"} <= set(hubmodels.list_datasets())
    assert "fmnist-smallcnn-der" in hubmodels.list_presets()
    assert hubmodels.list_attacks() == ["fgsm", "n_fgsm", "pgd", "rs_fgsm"]
    assert {"standard", "pgd_at", "trades", "weat_adv"} <= set(hubmodels.list_training_methods())
    assert {"open_clip", "timm", "classifier", "hf-hub"} <= set(hubmodels.list_encoder_kinds())
