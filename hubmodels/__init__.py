"""hubmodels: discriminative models that generate images.

Robust classifiers read as energy-based models (WEAT, DER) and a frozen CLIP as a decoder
(CLIP^-1), loaded from and pushed to the Hugging Face Hub. Nothing heavy happens at import.
"""

from hubmodels.classifiers import RobustClassifier
from hubmodels.hub import CheckpointError, HubPushError, available_presets

__all__ = ["CheckpointError", "HubPushError", "RobustClassifier", "available_presets"]
__version__ = "0.1.0"
