"""RobustClassifier: a classifier that is also an energy-based model, stored on the Hub.

Reading (docs/methods.md 1.1, WEAT sec. 3): the logits f(x) define E(x) = -logsumexp f(x) and
E(x, y) = -f(x)[y]. Adversarially trained classifiers (PGD-AT, TRADES, WEAT, DER) have smooth
energy landscapes, which is what lets them generate images.

Contract: ``forward`` takes x in [0, 1] of shape (N, C, H, W) and returns
logits only; the input normalisation lives inside the model as non-persistent buffers built from
the config, so torchattacks/AutoAttack and our samplers see one clean function. The constructor
is the config: only JSON-able arguments, so ``config.json`` round-trips without custom code.
"""

from __future__ import annotations

import inspect
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from hubmodels.classifiers.architectures import build_backbone
from hubmodels.classifiers.model_card import render_model_card
from hubmodels.energy import energy as _energy
from hubmodels.explorer import (
    AttackStep,
    EnergyReference,
    EnergyReport,
    ReferenceShape,
    attack_trace,
    energy_report,
)
from hubmodels.hub import (
    CARD_NAME,
    WEIGHTS_NAME,
    CheckpointError,
    check_weights_header,
    load_state_dict_strict,
    resolve_checkpoint,
    save_safetensors,
)
from hubmodels.sampling.generate import fit_prior, sample
from hubmodels.sampling.priors import LEGACY_PRIOR_KEYS, ClassPrior, PriorShape

REPO_URL = "https://github.com/hubmodels/hubmodels"
MAX_CLASSES, MAX_CHANNELS, MAX_IMAGE_SIZE = 100_000, 64, 4096

if TYPE_CHECKING:  # both import diffusers; sampling imports them when it returns
    from hubmodels.outputs import Callback
    from hubmodels.sampling.output import SampleOutput


class RobustClassifier(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="hubmodels",
    tags=["hubmodels", "robust-classifier", "energy-based-model", "image-classification"],
    repo_url=REPO_URL,
):
    """An image classifier with its normalisation, threat model and training recipe.

    Args:
        architecture: backbone name, one of ``hubmodels.classifiers.ARCHITECTURES``
            ("small_cnn", "resnet18", "preact_resnet18", "wrn-28-10", "wrn-34-10").
        num_classes: number of classes K.
        in_channels: image channels (1 for Fashion-MNIST, 3 for CIFAR).
        image_size: input height = width in pixels.
        class_names: K human-readable names; defaults to "0".."K-1".
        mean, std: per-channel normalisation applied inside ``forward``; default 0 and 1
            (no normalisation, as in the WEAT code).
        dataset: name of the training data, e.g. "fashion-mnist".
        threat_model: ``{"norm": "linf" | "l2", "epsilon": float}``, epsilon on the [0, 1] scale.
        training: the recipe that produced the weights (method, loss settings, schedule, command).
        metrics: measured numbers, e.g. ``{"clean_acc": 0.9, "pgd20_acc": 0.7}``, with their setup.
        prior: the sizes of the stored sampling prior (``hubmodels.sampling.PriorShape``);
            None until ``fit_prior`` has run. Its tensors live in the weights file.
        energy_reference: the shape of the stored histogram of real test images' E(x) and
            OOD threshold (``hubmodels.explorer.ReferenceShape``); None until
            ``fit_energy_reference`` has run. Its tensors live in the weights file.
    """

    def __init__(
        self,
        architecture: str = "small_cnn",
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 28,
        class_names: list[str] | None = None,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        dataset: str | None = None,
        threat_model: dict[str, Any] | None = None,
        training: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        prior: dict[str, Any] | None = None,
        energy_reference: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        # Bounds far above any real classifier (ImageNet-21k has 21,841 classes) that stop an
        # untrusted config from asking for gigabytes before the weights are even looked at.
        for name, value, most in (
            ("num_classes", num_classes, MAX_CLASSES),
            ("in_channels", in_channels, MAX_CHANNELS),
            ("image_size", image_size, MAX_IMAGE_SIZE),
        ):
            if not isinstance(value, int) or not 1 <= value <= most:
                raise ValueError(f"{name} must be a whole number in [1, {most}], got {value!r}")
        class_names = list(class_names) if class_names is not None else None
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class_names given for {num_classes} classes")
        mean = list(mean) if mean is not None else [0.0] * in_channels
        std = list(std) if std is not None else [1.0] * in_channels
        if len(mean) != in_channels or len(std) != in_channels:
            raise ValueError(f"mean and std need {in_channels} values each, got {mean}, {std}")
        if min(std) <= 0:
            raise ValueError(f"std must be positive, got {std}")
        self._config: dict[str, Any] = {
            "architecture": architecture,
            "num_classes": num_classes,
            "in_channels": in_channels,
            "image_size": image_size,
            "class_names": class_names or [str(k) for k in range(num_classes)],
            "mean": mean,
            "std": std,
            "dataset": dataset,
            "threat_model": dict(threat_model or {}),
            "training": dict(training or {}),
            "metrics": dict(metrics or {}),
            "prior": dict(prior) if prior is not None else None,
            "energy_reference": None,
        }
        self.backbone = build_backbone(
            architecture, num_classes=num_classes, in_channels=in_channels, image_size=image_size
        )
        # Non-persistent: the config is the single source of truth for the normalisation.
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.prior: ClassPrior | None = None
        if prior is not None:
            self.attach_prior(PriorShape.from_dict(prior))
        self.energy_reference: EnergyReference | None = None
        if energy_reference is not None:
            self.attach_energy_reference(ReferenceShape.from_dict(energy_reference))

    # ------------------------------------------------------------------ the config
    @property
    def config(self) -> Mapping[str, Any]:
        """The constructor's arguments and what was fitted or measured since (the prior's and
        the energy reference's shapes, metrics): what ``config.json`` holds. Read-only, nested
        mappings included; ``update_config`` is the one way to change it."""
        return _read_only(self._config)

    def update_config(self, **entries: Any) -> None:
        """Replace top-level config entries, e.g. ``update_config(metrics={...})`` after an
        evaluation. Entries must be JSON-able (they go to ``config.json``) and already known
        (the constructor's arguments)."""
        unknown = sorted(set(entries) - set(self._config))
        if unknown:
            raise KeyError(f"unknown config entries {unknown}; known: {sorted(self._config)}")
        self._config.update(json.loads(json.dumps(entries)))  # a JSON-able copy, or TypeError

    # ------------------------------------------------------------------ the model
    @property
    def class_names(self) -> list[str]:
        return list(self._config["class_names"])  # a copy: the config changes by update_config

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c = self._config  # read on every forward: no read-only view needed
        return (c["in_channels"], c["image_size"], c["image_size"])

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"expected images of shape (N, {', '.join(map(str, self.input_shape))}) "
                f"in [0, 1], got {tuple(x.shape)}"
            )

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, K) for images x in [0, 1] of shape (N, C, H, W)."""
        self._check_input(x)
        return self.backbone(self.normalize(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (N, D): what local PCA and diversity metrics measure."""
        self._check_input(x)
        return self.backbone.features(self.normalize(x))

    def energy(self, x: torch.Tensor, y: torch.Tensor | int | None = None) -> torch.Tensor:
        """Marginal energy -logsumexp f(x), or joint energy -f(x)[y] when ``y`` is given."""
        logits = self(x)
        if isinstance(y, int):
            y = torch.full((x.shape[0],), y, dtype=torch.long, device=x.device)
        return _energy(logits, y)

    # ------------------------------------------------------------------ the energy explorer
    def attach_energy_reference(self, shape: ReferenceShape) -> None:
        """Add empty energy-reference buffers of ``shape`` (filled by fitting or loading)."""
        self.energy_reference = EnergyReference(shape).to(self.mean.device)
        self._config["energy_reference"] = shape.to_dict()

    @torch.no_grad()
    def fit_energy_reference(
        self, images: torch.Tensor, shape: ReferenceShape | None = None, batch_size: int = 500
    ) -> None:
        """Store the E(x) histogram and OOD threshold of real in-distribution ``images``
        (N, C, H, W) in [0, 1], usually the test set; saved with the weights."""
        shape = shape or ReferenceShape(source=f"{len(images)} images")
        energies = torch.cat(
            [
                self.energy(images[i : i + batch_size]).cpu()
                for i in range(0, len(images), batch_size)
            ]
        )
        self.attach_energy_reference(shape)
        self.energy_reference.fit(energies)

    def energy_report(self, x: torch.Tensor) -> EnergyReport:
        """Every energy of ``x`` (N, C, H, W) in [0, 1]: E(x), E(x, y) for each class, p(y|x),
        the prediction, and with a stored reference the OOD verdict and E(x)'s percentile among
        real test images (``hubmodels.explorer.EnergyReport``)."""
        self._check_input(x)
        return energy_report(self, x, self.energy_reference)

    def attack_trace(
        self,
        x: torch.Tensor,
        y: torch.Tensor | int,
        *,
        eps: float | None = None,
        steps: int = 20,
        target: torch.Tensor | int | None = None,
        callback: Any = None,
    ) -> list[AttackStep]:
        """PGD on ``x`` (untargeted, or towards ``target``) recorded step by step in energies;
        ``eps`` defaults to the model's threat model. See ``hubmodels.explorer.attack_trace``."""
        self._check_input(x)
        threat = self._config["threat_model"]
        eps = threat.get("epsilon", 0.1) if eps is None else eps
        y, target = (
            torch.full((x.shape[0],), v, dtype=torch.long) if isinstance(v, int) else v
            for v in (y, target)
        )
        return attack_trace(
            self,
            x,
            y.to(x.device),
            eps=eps,
            steps=steps,
            norm=threat.get("norm", "linf"),
            target=None if target is None else target.to(x.device),
            callback=callback,
        )

    # ------------------------------------------------------------------ sampling
    def attach_prior(self, shape: PriorShape) -> None:
        """Add empty prior buffers of ``shape`` (filled by ``fit_prior`` or by loading)."""
        dim = self._config["in_channels"] * self._config["image_size"] ** 2
        device = self.mean.device
        self.prior = ClassPrior(self._config["num_classes"], dim, shape).to(device)
        self._config["prior"] = shape.to_dict()

    def fit_prior(
        self, images: torch.Tensor, labels: torch.Tensor, shape: PriorShape | None = None, **kw
    ) -> None:
        """Fit the class PCA / Gaussian / local PCA priors and the class reference energies
        on training images (N, C, H, W) in [0, 1]; they are saved with the weights."""
        fit_prior(self, images, labels, shape, **kw)

    def sample(
        self,
        classes: list[str | int] | str | int | None = None,
        n_per_class: int = 8,
        *,
        num_inference_steps: int | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        callback: Callback | None = None,
        **settings: Any,
    ) -> SampleOutput:
        """Class-conditional samples by momentum SGLD on E(x, y) from a stored prior.

        The generation contract of ``hubmodels.outputs``, shared with ``CLIPInverter``.

        Args:
            classes: class names or indices (default: all classes).
            n_per_class: samples per class (at most 10,000 in all per call).
            num_inference_steps: SGLD steps (the cap with ``adaptive_stop``; default 30).
            seed: seeds the prior draw and the Langevin noise; same seed, same images. Without
                it, one is drawn from ``generator``, else 0.
            callback: ``callback(step, images, {"energies": E(x, y)})`` every few steps.
            **settings: ``hubmodels.sampling.SamplerSettings`` fields: init ("local_pca",
                the default, "pca", "gaussian", "uniform"), scale (component stds, 1.25),
                step_size (0.8), momentum (0), noise_std (1e-3), classifier_weight (gamma of
                p(x|y) p(y|x)^gamma, 2), guidance, adaptive_stop, tolerance (in units of the
                class's real-energy std, 0.1), reject.
                docs/sampling.md says how the defaults were tuned.

        Returns:
            ``SampleOutput``: PIL ``images``, ``tensors``, ``settings`` (seed included), and per
            sample ``labels``, final ``energies``, ``steps`` taken and ``accepted``.
        """
        return sample(
            self,
            classes,
            n_per_class,
            num_inference_steps=num_inference_steps,
            seed=seed,
            generator=generator,
            callback=callback,
            **settings,
        )

    # ------------------------------------------------------------------ the hub
    def _save_pretrained(self, save_directory: Path) -> None:
        """Write model.safetensors, config.json and the model card (overwriting old ones)."""

        tensors = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_safetensors(tensors, save_directory / WEIGHTS_NAME, metadata={"format": "pt"})
        (save_directory / "config.json").write_text(json.dumps(self._config, indent=2) + "\n")
        render_model_card(self._config).save(str(save_directory / CARD_NAME))

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RobustClassifier:
        """Build an untrained model from a config dict, naming what does not fit."""
        known = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise CheckpointError(
                f"config has keys this version does not know: {unknown}; "
                "upgrade hubmodels or remove them"
            )
        try:
            return cls(**config)
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"config does not build a RobustClassifier: {err}") from err

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        force_download: bool = False,
        local_files_only: bool = False,
        token: str | bool | None = None,
        map_location: str | torch.device = "cpu",
    ) -> RobustClassifier:
        """Load strictly from a preset name, a ``save_pretrained`` folder or a hub id.

        Raises ``CheckpointError`` for a missing file, a config that does not build, or weights
        that do not match it exactly. The model comes back in eval mode.
        """
        config, weights = resolve_checkpoint(
            pretrained_model_name_or_path,
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            local_files_only=local_files_only,
            token=token,
        )
        ignore = ()
        if LEGACY_PRIOR_KEYS & set(config.get("prior") or {}):
            # The retired local prior stored training images; never load it, keep the model.
            warnings.warn(
                f"{pretrained_model_name_or_path}: its sampling prior is the retired "
                "anchor-centred local PCA (it stored training images) and was not loaded; "
                "refit one with `python -m hubmodels fit-prior --model ... --out ...`",
                stacklevel=2,
            )
            config = {**config, "prior": None}
            ignore = ("prior.",)
        # The config is untrusted: build it on the meta device (no memory), check every name
        # and shape against the file's header, and only then allocate the real model.
        with torch.device("meta"):
            skeleton = cls.from_config(config)
        check_weights_header(skeleton.state_dict(), weights, ignore_prefixes=ignore)
        model = cls.from_config(config)
        load_state_dict_strict(model, weights, map_location=map_location, ignore_prefixes=ignore)
        return model.to(map_location).eval()


def _read_only(config: dict[str, Any]) -> Mapping[str, Any]:
    """A read-only view of a config: nested mappings are read-only views too, lists copies."""
    return MappingProxyType(
        {
            k: _read_only(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v
            for k, v in config.items()
        }
    )
