"""Sampling from robust classifiers: priors stored in the checkpoint and momentum SGLD."""

from hubmodels.sampling.priors import INITS, ClassPrior, PriorShape
from hubmodels.sampling.sampler import SampleOutput, SamplerSettings

__all__ = ["INITS", "ClassPrior", "PriorShape", "SampleOutput", "SamplerSettings"]
