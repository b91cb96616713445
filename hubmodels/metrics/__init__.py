"""Metrics: robust accuracy and energy diagnostics; FID / KID / IS, judge reports, CLIP score."""

from hubmodels.metrics.clip_score import clip_score
from hubmodels.metrics.generation import (
    FeatureExtractor,
    classifier_extractor,
    extract_features,
    fid_kid,
    frechet_distance,
    inception_extractor,
    inception_score,
    judge_report,
    kernel_inception_distance,
)
from hubmodels.metrics.robust_accuracy import accuracy, autoattack, energy_diagnostics, pgd_attack

__all__ = [
    "FeatureExtractor",
    "accuracy",
    "autoattack",
    "classifier_extractor",
    "clip_score",
    "energy_diagnostics",
    "extract_features",
    "fid_kid",
    "frechet_distance",
    "inception_extractor",
    "inception_score",
    "judge_report",
    "kernel_inception_distance",
    "pgd_attack",
]
