"""``CLIPInverter``: a frozen encoder as a decoder, by implicit inversion (docs/methods.md 4).

Every task optimises the weights phi of a FINER network (never pixels) so that the encoder's
augmentation-averaged embedding e*(phi) of the rendering approaches a target (docs/methods.md 4.6):

    phi <- phi - lr_l(t) * grad_phi  sum_i w_i (1 - cos(e*(phi), t_i))

with one Adam group per INR layer and the layer-wise Gaussian learning-rate sweep lr_l(t) from
shallow (layout) to deep (detail) layers (4.3). The tasks differ in their targets t_i, weights
w_i and start phi_0:

* **text-to-image** (4.1, 4.5): t_1 = R e_text, the prompt's text embedding mapped into the image
  sub-manifold by a per-prompt orthogonal Procrustes R fitted on the k nearest bank pairs;
  t_2 = the softmax-blended image embeddings of those neighbours (blending loss, weight beta);
  phi_0 = the AWP anchor of the nearest neighbour. Without a bank ("plain" CLIP^-1, Table 3a):
  t_1 = e_text, random phi_0. Negative prompts enter with a negative weight (they repel).
  The bank is the one shipped in the package (``builtin_bank``: anchors fitted to openly
  licensed photos, keys computed with whichever encoder is loaded) unless the user gives one.
* **reconstruction** (4.7): t_1 = the image's own embedding; phi_0 random, or the nearest anchor.
* **style transfer** (4.7, [P]): phi_0 = an INR fitted to the content image (AWP on a light blur);
  t_1 = the style (text, Procrustes-mapped when the bank has text, or a style image's
  embedding), t_2 = the content image's embedding with weight lambda_c; the sweep starts at a
  deeper layer, so the layout-carrying shallow layers stay frozen.

The loop itself is ``InversionEngine`` (engine.py), public for benchmarks, studies and bank
building; this class chooses each task's targets, weights and start. The constructor is the
config: only JSON-able arguments, saved to config.json by
``save_pretrained``; the bank is data and travels beside it (``bank.safetensors``, ``bank.json``).
"""

from __future__ import annotations

import inspect
import math
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hubmodels.hub import CONFIG_NAME, CheckpointError, push_folder, read_config, resolve_folder
from hubmodels.images import centre_square, load_image, to_pil
from hubmodels.inversion.augment import AugmentConfig
from hubmodels.inversion.awp import fit_anchor
from hubmodels.inversion.bank import AnchorBank
from hubmodels.inversion.builtin_bank import builtin_bank, builtin_inr
from hubmodels.inversion.encoders import ImageEncoder, load_encoder
from hubmodels.inversion.engine import InversionEngine, Target
from hubmodels.inversion.finer import FinerNet, INRConfig
from hubmodels.inversion.model_card import inverter_model_card
from hubmodels.inversion.output import InversionOutput
from hubmodels.inversion.procrustes import blend_target, procrustes_target
from hubmodels.outputs import Callback, resolve_seed

BANK_FILES = ("bank.safetensors", "bank.json")
BUILTIN = "builtin"  # the ``bank`` setting that names the bank shipped in the package
MAX_STEPS = 5000
RESOLUTION_RANGE = (16, 1024)
RENDER_RESOLUTION = 112  # see docs/inversion.md: the study at half resolution and the cost table

Prompt = str | Mapping[str, float]


class CLIPInverter:
    """Text-to-image, reconstruction and style transfer with a frozen image encoder.

    Args:
        clip: the encoder: an open_clip model name ("ViT-B-32", "hf-hub:org/repo"), or
            "timm:<name>" / "classifier:<source>" for image-only encoders.
        pretrained: open_clip tag ("openai"), a local weights file, or None (random weights: for
            tests and timing only; the encoder warns).
        resolution: rendered image side in pixels.
        render_resolution: side of the grid the INR is rendered on while it is optimised
            (capped at ``resolution``; None: ``resolution``). A coarser grid, shifted by a
            random sub-pixel offset every step, optimises the same continuous image for a
            fraction of the INR's cost; the result is rendered at ``resolution``.
        steps: default optimisation steps per task (the paper uses 400).
        lr: peak Adam learning rate of the layer sweep (lr_max, 4.3).
        sweep_width: Gaussian width s of the sweep, in layers.
        output_floor: the output layer always gets at least this fraction of ``lr``.
        inr: FINER settings (``INRConfig`` fields); augment: ``AugmentConfig`` fields.
        neighbours: k, bank pairs for Procrustes and blending (4.5).
        blend_weight: beta of the blending loss; blend_temperature: its softmax tau (4.6).
        centre_procrustes: centre the pairs before the SVD (4.5 option).
        negative_weight: weight of a negative prompt (it repels).
        content_weight: lambda_c of style transfer's content anchoring (4.7).
        style_start_layer: first layer the style sweep may change.
        content_fit_steps, content_blur, awp_gamma: fitting the content INR (4.4 settings).
        bank: "builtin" (default): the bank shipped in the package, its keys computed with this
            encoder on first use and cached (``builtin_bank``); a folder holding a saved bank
            (``build-bank``); or None for plain CLIP^-1 (random start, no Procrustes, no
            blending). The shipped anchors fit the default INR only: with another ``inr`` the
            default falls back to plain mode with a warning.
        device: where to run; default accelerate's ``PartialState().device``. Not saved.
    """

    def __init__(
        self,
        clip: str = "ViT-B-32",
        pretrained: str | None = None,
        *,
        resolution: int = 224,
        render_resolution: int | None = RENDER_RESOLUTION,
        steps: int = 400,
        lr: float = 1e-4,
        sweep_width: float = 1.0,
        output_floor: float = 0.1,
        inr: Mapping[str, Any] | None = None,
        augment: Mapping[str, Any] | None = None,
        neighbours: int = 32,
        blend_weight: float = 0.3,
        blend_temperature: float = 0.05,
        centre_procrustes: bool = False,
        negative_weight: float = 0.3,
        content_weight: float = 0.5,
        style_start_layer: int = 2,
        content_fit_steps: int = 300,
        content_blur: float = 1.0,
        awp_gamma: float = 5e-3,
        bank: str | os.PathLike | None = BUILTIN,
        device: str | torch.device | None = None,
    ) -> None:
        self.inr_config = INRConfig.from_dict(dict(inr or {}))
        self.augment_config = AugmentConfig.from_dict(dict(augment or {}))
        self.config: dict[str, Any] = dict(
            clip=clip,
            pretrained=pretrained,
            resolution=_in_range("resolution", resolution, *RESOLUTION_RANGE),
            render_resolution=None
            if render_resolution is None
            else _in_range("render_resolution", render_resolution, *RESOLUTION_RANGE),
            steps=_in_range("steps", steps, 1, MAX_STEPS),
            lr=_positive("lr", lr),
            sweep_width=_positive("sweep_width", sweep_width),
            output_floor=_fraction("output_floor", output_floor),
            inr=self.inr_config.to_dict(),
            augment=self.augment_config.to_dict(),
            neighbours=_in_range("neighbours", neighbours, 1, 4096),
            blend_weight=_non_negative("blend_weight", blend_weight),
            blend_temperature=_positive("blend_temperature", blend_temperature),
            centre_procrustes=bool(centre_procrustes),
            negative_weight=_non_negative("negative_weight", negative_weight),
            content_weight=_non_negative("content_weight", content_weight),
            style_start_layer=_in_range(
                "style_start_layer", style_start_layer, 0, self.inr_config.hidden_layers + 1
            ),
            content_fit_steps=_in_range("content_fit_steps", content_fit_steps, 1, MAX_STEPS),
            content_blur=_non_negative("content_blur", content_blur),
            awp_gamma=_non_negative("awp_gamma", awp_gamma),
            # A user's bank is data saved beside config.json (has_bank); only the choice of the
            # shipped one or none is a setting.
            bank=BUILTIN if bank == BUILTIN else None,
        )
        self.device = torch.device(device) if device is not None else _default_device()
        self.encoder: ImageEncoder = load_encoder(clip, pretrained).to(self.device).eval()
        if self.device.type == "cuda":  # NHWC convolutions (a ViT only has its patch stem)
            self.encoder.to(memory_format=torch.channels_last)
        self.engine = InversionEngine(
            self.encoder,
            self.inr_config,
            self.augment_config,
            resolution=self.config["resolution"],
            render_resolution=self.config["render_resolution"],
            lr=self.config["lr"],
            sweep_width=self.config["sweep_width"],
            output_floor=self.config["output_floor"],
            device=self.device,
        )
        self._bank: AnchorBank | None = None
        self._builtin_pending = False  # the shipped bank, loaded on first use
        self.bank_source: str | None = None  # "builtin", "user" or None: saved and reported
        if bank == BUILTIN:
            self._use_builtin()
        elif bank is not None:
            self.use_bank(bank)

    # ------------------------------------------------------------------ bank
    @property
    def bank(self) -> AnchorBank | None:
        """The attached anchor bank, or None (plain mode). The shipped bank's keys are computed
        here on first access (a few seconds; then cached on disk for this encoder)."""
        if self._builtin_pending:
            self._builtin_pending = False
            self._bank = builtin_bank(
                self.encoder, self.engine.image_embedding, self.augment_config.to_dict()
            )
        return self._bank

    def _use_builtin(self) -> None:
        shipped = builtin_inr()
        if INRConfig.from_dict(shipped) != self.inr_config:
            warnings.warn(
                f"the shipped anchor bank holds INRs with {shipped}; this inverter renders with "
                f"{self.inr_config.to_dict()}, so it runs plain CLIP^-1 (no anchor start, "
                "Procrustes or blending). Keep the default inr, or build a bank for yours "
                "(build-bank); bank=None silences this.",
                stacklevel=3,
            )
            return
        self._bank, self._builtin_pending, self.bank_source = None, True, BUILTIN

    def use_bank(self, bank: AnchorBank | str | os.PathLike | None) -> CLIPInverter:
        """Attach an anchor bank (an ``AnchorBank``, a folder holding one, or "builtin" for
        the shipped one); None detaches it (plain mode).

        Refuses a bank whose embeddings come from another encoder, or whose anchors do not fit
        this inverter's INR, naming both sides.
        """
        self._builtin_pending = False
        if bank == BUILTIN:
            self._bank, self.bank_source = None, None
            self._use_builtin()
            return self
        if bank is not None and not isinstance(bank, AnchorBank):
            bank = AnchorBank.load(bank)
        if bank is not None:
            bank.check_compatible(self.encoder.name, self.encoder.embed_dim)
            # As configs, not dicts: a bank saved before a field existed holds its default.
            if INRConfig.from_dict(bank.inr) != self.inr_config:
                raise CheckpointError(
                    f"the bank's anchors are INRs with {bank.inr}, but this inverter renders with "
                    f"{self.inr_config.to_dict()}: pass inr= matching the bank, or rebuild it"
                )
        self._bank, self.bank_source = bank, None if bank is None else "user"
        return self

    # ------------------------------------------------------------------ tasks
    def text_to_image(
        self,
        prompt: Prompt,
        negative_prompt: str | None = None,
        *,
        num_inference_steps: int | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        callback: Callback | None = None,
        preview_every: int = 10,
    ) -> InversionOutput:
        """Render ``prompt`` (a string, or {text: weight} for a weighted mix) as an image.

        With a bank: Procrustes-mapped target, blending loss and an anchor start (the full
        method); without one: plain CLIP^-1 (random start, raw text target).
        """
        self._require_text()
        steps = self._steps(num_inference_steps)
        seed = resolve_seed(generator, seed)
        text = self._prompt_embedding(prompt)
        has_negative = bool(negative_prompt and negative_prompt.strip())
        negative = self._prompt_embedding(negative_prompt) if has_negative else None
        settings = self._settings("text_to_image", seed, steps, prompt=prompt)
        settings["negative_prompt"] = negative_prompt if has_negative else None
        if self.bank is None:
            net, terms = self.engine.new_net(seed), [(text, 1.0)]
            settings["mode"] = "plain"
        else:
            indices, _ = self.bank.retrieve(text, self.config["neighbours"], against="text")
            target = self._procrustes(text, indices)
            blended = blend_target(
                target, self.bank.image_embeds[indices], self.config["blend_temperature"]
            )
            net = self._anchor_net(int(indices[0]))
            terms = [(target, 1.0), (blended, self.config["blend_weight"])]
            if negative is not None:
                negative = self._procrustes(negative, indices)
            settings.update(mode="bank", **self._bank_settings(indices))
        if negative is not None:
            terms.append((negative, -self.config["negative_weight"]))
        return self._optimise(net, terms, steps, seed, 0, callback, preview_every, settings)

    def reconstruct(
        self,
        image: Any,
        *,
        num_inference_steps: int | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        start: str = "auto",
        callback: Callback | None = None,
        preview_every: int = 10,
    ) -> InversionOutput:
        """Render an image from ``image``'s embedding alone (4.7).

        ``start``: "random" (a fresh INR), "anchor" (the nearest bank anchor by image embedding;
        needs a bank) or "auto" (anchor when a bank is attached).
        """
        if start not in ("auto", "random", "anchor"):
            raise ValueError(f"start is 'auto', 'random' or 'anchor', got {start!r}")
        if start == "anchor" and self.bank is None:
            raise ValueError("start='anchor' needs a bank: use_bank(...) or start='random'")
        steps = self._steps(num_inference_steps)
        seed = resolve_seed(generator, seed)
        target = self.engine.image_embedding(image)
        settings = self._settings("reconstruct", seed, steps, start=start)
        if self.bank is not None and start != "random":
            indices, _ = self.bank.retrieve(target, 1, against="image")
            net = self._anchor_net(int(indices[0]))
            settings.update(self._bank_settings(indices, pairs=False))
        else:
            net = self.engine.new_net(seed)
        return self._optimise(
            net, [(target, 1.0)], steps, seed, 0, callback, preview_every, settings
        )

    def style_transfer(
        self,
        content_image: Any,
        style: Any,
        *,
        num_inference_steps: int | None = None,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        callback: Callback | None = None,
        preview_every: int = 10,
    ) -> InversionOutput:
        """Keep ``content_image``'s layout, move its look toward ``style`` (text or an image).

        The content INR is fitted first (AWP on a light blur), then only layers from
        ``style_start_layer`` on are optimised toward the style, with the content embedding
        as an anchor of weight ``content_weight`` (4.7 proposals).
        """
        steps = self._steps(num_inference_steps)
        seed = resolve_seed(generator, seed)
        content = centre_square(load_image(content_image), self.config["resolution"])
        content = content.to(self.device)
        pairs = None
        if isinstance(style, str):
            self._require_text()
            style_target = self._prompt_embedding(style)
            if self.bank is not None and self.bank.has_text:
                indices, _ = self.bank.retrieve(style_target, self.config["neighbours"], "text")
                style_target = self._procrustes(style_target, indices)
                pairs = [self.bank.captions[int(i)] for i in indices]
            style_setting = style
        else:
            style_target, style_setting = self.engine.image_embedding(style), "<image>"
        settings = self._settings("style_transfer", seed, steps, style=style_setting)
        if pairs is not None:
            settings["procrustes_pairs"] = pairs
        net = self.engine.new_net(seed)
        fit_anchor(
            net,
            content,
            steps=self.config["content_fit_steps"],
            gamma=self.config["awp_gamma"],
            blur_sigma=self.config["content_blur"],
        )
        terms = [
            (style_target, 1.0),
            (self.engine.image_embedding(content), self.config["content_weight"]),
        ]
        start_layer = self.config["style_start_layer"]
        return self._optimise(
            net, terms, steps, seed, start_layer, callback, preview_every, settings
        )

    # ------------------------------------------------------------------ the engine
    def _optimise(
        self,
        net: FinerNet,
        terms: list[Target],
        steps: int,
        seed: int,
        start_layer: int,
        callback: Callback | None,
        preview_every: int,
        settings: dict[str, Any],
    ) -> InversionOutput:
        """The engine's loop (``InversionEngine.optimise``), packed as a task's output."""
        result = self.engine.optimise(
            net,
            terms,
            steps=steps,
            seed=seed,
            start_layer=start_layer,
            callback=callback,
            preview_every=preview_every,
        )
        settings["final_loss"] = result.losses[-1]
        return InversionOutput(
            images=to_pil(result.image),
            tensors=result.image.cpu(),
            settings=settings,
            losses=result.losses,
        )

    # ------------------------------------------------------------------ targets and starts
    def _prompt_embedding(self, prompt: Prompt) -> torch.Tensor:
        """Unit text embedding of a prompt, or of the normalised weighted mix {text: weight}."""
        if isinstance(prompt, str):
            prompt = {prompt: 1.0}
        if not isinstance(prompt, Mapping) or not prompt:
            raise ValueError("a prompt is a non-empty string or a {text: weight} mapping")
        texts = list(prompt)
        if any(not isinstance(t, str) or not t.strip() for t in texts):
            raise ValueError("the prompt is empty: describe the image you want")
        weights = torch.tensor([float(prompt[t]) for t in texts], device=self.device)
        if not torch.isfinite(weights).all() or weights.sum() <= 0:
            raise ValueError(f"prompt weights must be finite with a positive sum, got {weights}")
        with torch.no_grad():
            embeds = self.encoder.encode_text(texts).float()
        embeds = torch.nn.functional.normalize(embeds, dim=-1)
        return torch.nn.functional.normalize((weights[:, None] * embeds).sum(0), dim=0)

    def _procrustes(self, query: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        return procrustes_target(
            query,
            self.bank.text_embeds[indices].to(self.device),
            self.bank.image_embeds[indices].to(self.device),
            centre=self.config["centre_procrustes"],
        )

    def _bank_settings(self, indices: torch.Tensor, pairs: bool = True) -> dict[str, Any]:
        """What the output's settings record of the bank: the anchor that started the run and
        the captions of the pairs that fitted Procrustes and the blending target."""
        found = dict(anchor_caption=self.bank.captions[int(indices[0])])
        if pairs:
            found["procrustes_pairs"] = [self.bank.captions[int(i)] for i in indices]
        return found

    def _anchor_net(self, index: int) -> FinerNet:
        return self.engine.net_from_state(self.bank.anchor_state(index))

    def _require_text(self) -> None:
        if not self.encoder.has_text:
            raise ValueError(
                f"{self.encoder.name} has no text tower: text prompts need a CLIP encoder "
                "(reconstruction and image-guided style transfer work with any encoder)"
            )

    def _steps(self, steps: int | None) -> int:
        return self.config["steps"] if steps is None else _in_range("steps", steps, 1, MAX_STEPS)

    def _settings(self, task: str, seed: int, steps: int, **extra: Any) -> dict[str, Any]:
        settings = dict(task=task, seed=seed, steps=steps, encoder=self.encoder.name)
        settings.update(extra)
        settings.update(
            {k: v for k, v in self.config.items() if k not in ("clip", "pretrained", "steps")}
        )
        bank = self.bank
        settings["bank"] = self.bank_source if bank is not None else None
        settings["bank_size"] = len(bank) if bank is not None else 0
        return settings

    # ------------------------------------------------------------------ the Hub
    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write config.json, the bank (when attached) and a model card to ``folder``."""
        import json

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = dict(self.config, library_name="hubmodels", class_name=type(self).__name__)
        # The shipped bank travels with the package, not the folder: only its name is saved.
        user_bank = self._bank if self.bank_source == "user" else None
        config["bank"] = BUILTIN if self.bank_source == BUILTIN else None
        config["has_bank"] = user_bank is not None
        (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        if user_bank is not None:
            user_bank.save(folder)
        inverter_model_card(config, user_bank).save(folder / "README.md")
        return folder

    @classmethod
    def from_pretrained(
        cls,
        source: str | os.PathLike,
        *,
        clip: str | None = None,
        pretrained: str | None = None,
        device: str | torch.device | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
    ) -> CLIPInverter:
        """Load an inverter (config + bank) from a folder or a hub id, strictly.

        ``clip`` / ``pretrained`` override where the encoder's weights come from (say a local
        copy of the weights the bank was built with); the bank still refuses another encoder.
        """
        folder = resolve_folder(
            source,
            [CONFIG_NAME, *BANK_FILES, "README.md"],
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            token=token,
        )
        config = read_config(folder / CONFIG_NAME)
        has_bank = bool(config.pop("has_bank", False))
        for key in ("library_name", "class_name"):
            config.pop(key, None)
        unknown = sorted(set(config) - _config_keys())
        if unknown:
            raise CheckpointError(f"{folder / CONFIG_NAME} has unknown settings: {unknown}")
        if clip is not None:
            config["clip"] = clip
        if pretrained is not None:
            config["pretrained"] = pretrained
        if config.get("bank") not in (None, BUILTIN):
            raise CheckpointError(
                f"{folder / CONFIG_NAME}: bank must be {BUILTIN!r} or null, got {config['bank']!r}"
                " (a bank of one's own is saved beside config.json, with has_bank true)"
            )
        if has_bank:  # the saved bank replaces any other; attached below
            config["bank"] = None
        try:
            inverter = cls(**config, device=device)
        except (TypeError, ValueError) as err:
            if isinstance(err, CheckpointError):
                raise
            raise CheckpointError(
                f"{folder / CONFIG_NAME} does not build an inverter: {err}"
            ) from err
        if has_bank:
            missing = [n for n in BANK_FILES if not (folder / n).is_file()]
            if missing:
                raise CheckpointError(f"{folder} says it has a bank but lacks {missing}")
            inverter.use_bank(folder)
        return inverter

    def push_to_hub(
        self, repo_id: str, *, token: str | None = None, private: bool | None = None
    ) -> str:
        """Save to a temporary folder and upload it as one commit; return the commit URL."""
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            return push_folder(
                tmp,
                repo_id,
                token=token,
                private=private,
                commit_message="Upload hubmodels CLIPInverter",
                required=(CONFIG_NAME,),
            )


def _config_keys() -> set[str]:
    """What config.json may hold: the constructor's arguments but device."""
    parameters = inspect.signature(CLIPInverter.__init__).parameters
    return set(parameters) - {"self", "device"}


# ---------------------------------------------------------------------- argument checks
def _default_device() -> torch.device:
    from accelerate import PartialState

    return PartialState().device


def _in_range(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return value


def _positive(name: str, value: Any) -> float:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return float(value)


def _non_negative(name: str, value: Any) -> float:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _fraction(name: str, value: Any) -> float:
    value = _non_negative(name, value)
    if value > 1:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value
