"""Sampling from robust classifiers: priors stored in the checkpoint and momentum SGLD."""

from hubmodels.sampling.priors import INITS, ClassPrior, PriorShape
from hubmodels.sampling.sampler import SamplerSettings

__all__ = ["INITS", "ClassPrior", "PriorShape", "SampleOutput", "SamplerSettings"]


def __getattr__(name: str):
    # SampleOutput's base comes from diffusers (seconds to import): load it on first use.
    if name == "SampleOutput":
        from hubmodels.sampling.output import SampleOutput

        return SampleOutput
    raise AttributeError(f"module 'hubmodels.sampling' has no attribute {name!r}")
