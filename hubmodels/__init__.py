"""hubmodels: discriminative models that generate images.

Robust classifiers read as energy-based models (WEAT, DER) and a frozen CLIP as a decoder
(CLIP^-1), loaded from and pushed to the Hugging Face Hub. Nothing heavy happens at import.
"""

from hubmodels.classifiers import RobustClassifier
from hubmodels.hub import CheckpointError, HubPushError, available_presets

__all__ = [
    "CLIPInverter",
    "CheckpointError",
    "HubPushError",
    "RobustClassifier",
    "available_presets",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    # CLIPInverter pulls in open_clip, timm and diffusers: import them only when it is used.
    if name == "CLIPInverter":
        from hubmodels.inversion.inverter import CLIPInverter

        return CLIPInverter
    raise AttributeError(f"module 'hubmodels' has no attribute {name!r}")
