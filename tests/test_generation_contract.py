"""Both generators keep one contract (hubmodels.outputs): steps, seed or generator, callback,
and a diffusers BaseOutput with images, tensors and settings."""

import warnings

import pytest
import torch
from diffusers.utils import BaseOutput

from hubmodels import CLIPInverter, RobustClassifier
from hubmodels.inversion.encoders import RandomWeightsWarning
from hubmodels.outputs import GenerationOutput


@pytest.fixture(scope="module")
def generators(tiny_clip):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        inverter = CLIPInverter(
            clip=tiny_clip,
            resolution=32,
            inr={"hidden_layers": 1, "width": 16},
            augment={"n": 2},
            bank=None,
        )
    classifier = RobustClassifier.from_pretrained("fmnist-smallcnn-der")
    return {
        "sample": lambda **kw: classifier.sample(["Bag"], 2, **kw),
        "text_to_image": lambda **kw: inverter.text_to_image("a bag", preview_every=1, **kw),
    }


@pytest.mark.parametrize("name", ["sample", "text_to_image"])
def test_steps_seed_generator_callback_and_output(generators, name):
    call = generators[name]
    seen = []
    out = call(
        num_inference_steps=5,
        seed=3,
        callback=lambda step, images, info: seen.append((step, images.dim(), sorted(info))),
    )
    assert isinstance(out, GenerationOutput) and isinstance(out, BaseOutput)
    assert out["images"] is out.images and len(out.images) == len(out.tensors)
    assert out.tensors.dim() == 4 and out.tensors.min() >= 0 and out.tensors.max() <= 1
    assert out.settings["seed"] == 3 and out.settings["steps"] == 5
    assert seen[-1][0] == 5 and all(dim == 4 for _, dim, _ in seen)
    assert seen[-1][2] == (["energies"] if name == "sample" else ["loss"])
    # The same seed, the same images; a generator stands in for a seed, reproducibly.
    again = call(num_inference_steps=5, seed=3)
    assert torch.equal(again.tensors, out.tensors)
    first = call(num_inference_steps=5, generator=torch.Generator().manual_seed(7))
    second = call(num_inference_steps=5, generator=torch.Generator().manual_seed(7))
    assert first.settings["seed"] == second.settings["seed"]
    assert torch.equal(first.tensors, second.tensors)


def test_sampling_keeps_its_reproducible_default_and_refuses_two_step_counts(generators):
    call = generators["sample"]
    assert torch.equal(call(num_inference_steps=3).tensors, call(steps=3, seed=0).tensors)
    with pytest.raises(TypeError, match="num_inference_steps= or steps=, not both"):
        call(num_inference_steps=3, steps=4)
