"""Metrics: robust accuracy and energy diagnostics; FID / KID / MiFID / IS, precision-recall-
density-coverage, data-copying scores, judge reports, CLIP score, energy OOD detection."""

from hubmodels.metrics.clip_score import clip_score
from hubmodels.metrics.distribution import distribution_report
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
from hubmodels.metrics.memorisation import copy_report, nearest_neighbours
from hubmodels.metrics.ood import fpr_at_tpr, ood_auroc
from hubmodels.metrics.robust_accuracy import accuracy, autoattack, energy_diagnostics, pgd_attack

__all__ = [
    "FeatureExtractor",
    "accuracy",
    "autoattack",
    "classifier_extractor",
    "clip_score",
    "copy_report",
    "distribution_report",
    "energy_diagnostics",
    "extract_features",
    "fid_kid",
    "fpr_at_tpr",
    "frechet_distance",
    "inception_extractor",
    "inception_score",
    "judge_report",
    "kernel_inception_distance",
    "nearest_neighbours",
    "ood_auroc",
    "pgd_attack",
]
