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
    "list_architectures",
    "list_attacks",
    "list_datasets",
    "list_encoder_kinds",
    "list_presets",
    "list_training_methods",
]
__version__ = "0.1.0"


def list_architectures() -> list[str]:
    """Backbone names a RobustClassifier config may give (``architecture=``)."""
    from hubmodels.classifiers.architectures import ARCHITECTURES

    return ARCHITECTURES.names()


def list_datasets() -> list[str]:
    """Dataset names the trainer and ``load_dataset`` accept."""
    from hubmodels.training.data import DATASETS

    return DATASETS.names()


def list_presets() -> list[str]:
    """Embedded checkpoints installed here, loadable by name with ``from_pretrained``."""
    return available_presets()


def list_attacks() -> list[str]:
    """Attacks ``hubmodels.attacks.ATTACKS`` holds (PGD and the single-step ones)."""
    from hubmodels.attacks import ATTACKS

    return ATTACKS.names()


def list_training_methods() -> list[str]:
    """Training methods (``--method``) the trainer knows."""
    from hubmodels.training.losses import LOSSES

    return LOSSES.names()


def list_encoder_kinds() -> list[str]:
    """Encoder spec prefixes ``CLIPInverter`` understands ("timm:...", "classifier:...")."""
    from hubmodels.inversion.encoders import ENCODERS

    return ENCODERS.names()


def __getattr__(name: str):
    # CLIPInverter pulls in open_clip, timm and diffusers: import them only when it is used.
    if name == "CLIPInverter":
        from hubmodels.inversion.inverter import CLIPInverter

        return CLIPInverter
    raise AttributeError(f"module 'hubmodels' has no attribute {name!r}")
