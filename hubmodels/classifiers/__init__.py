"""Robust classifiers: backbones and the RobustClassifier hub model."""

from hubmodels.classifiers.architectures import ARCHITECTURES, build_backbone
from hubmodels.classifiers.robust_classifier import RobustClassifier

__all__ = ["ARCHITECTURES", "RobustClassifier", "build_backbone"]
