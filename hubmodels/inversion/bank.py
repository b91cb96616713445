"""The anchor bank of CLIP^-1: robust INR anchors with their embeddings (docs/methods.md 4.1, 4.4).

Offline, every image of a reference set gets an INR fitted to a blurred copy of it under
adversarial weight perturbation (4.4): an "anchor". The bank keeps, per anchor,

* the INR's weights (its ``state_dict``, stacked over anchors: each tensor has a leading M);
* the image's embedding and, when the encoder has a text tower, its caption's text embedding;
* the caption, and the name of the encoder that produced the embeddings.

Per prompt, the inverter retrieves the k nearest anchors by cosine similarity (4.1, 4.5): the
nearest one's weights start the optimisation, and the k pairs (text, image embedding) fit the
Procrustes map of ``procrustes``. One matrix product does the retrieval: exact, and at the
10k-50k anchors of 4.4 a few milliseconds on a CPU, so FAISS is not needed.

On disk a bank is a folder with ``bank.safetensors`` (``image_embeds``, optional
``text_embeds``, ``anchor.<param name>``) and ``bank.json`` (format, encoder, sizes, the INR
config, the captions, the per-anchor parameter shapes). Anchors are held in float16, in memory
and on disk: a 5x256 FINER has 264,707 parameters (1.06 MB in float32), so the 50k anchors of
4.4 are 53 GB in float32 and half that in float16, and an anchor is only a starting point that
the inversion then moves. Loading
is strict in the manner of ``hub.load_state_dict_strict``: anything missing, extra, mis-shaped
or non-finite is a ``CheckpointError`` naming the file and the problem.
"""

from __future__ import annotations

import json
import operator
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file

from hubmodels.hub import (
    CheckpointError,
    layout_problems,
    read_config,
    save_safetensors,
    short_list,
)

BANK_WEIGHTS = "bank.safetensors"
BANK_CONFIG = "bank.json"
BANK_FORMAT = 1
ANCHOR_PREFIX = "anchor."
ANCHOR_DTYPE = torch.float16  # see the module docstring: half the size, ample for a start
_FP16_MAX = torch.finfo(torch.float16).max
_MIN_NORM = 1e-12  # an embedding shorter than this has no direction to compare


class AnchorBank:
    """M INR anchors with their image (and optional text) embeddings and captions.

    Args:
        image_embeds: (M, d) image embeddings; stored L2-normalised in float32.
        anchors: parameter name (as in the INR's ``state_dict``) -> tensor (M, *param_shape),
            anchor i's weights at index i; stored in float16.
        captions: M strings.
        encoder: the name of the encoder that produced the embeddings, e.g.
            ``"open_clip:ViT-B-32/laion2b_s34b_b79k"``; ``check_compatible`` compares it.
        inr: the INR config as a JSON object (the anchors' architecture); stored as a JSON copy.
        text_embeds: (M, d) caption embeddings, or None for an image-only encoder.

    Raises ValueError when the sizes disagree, an embedding is empty, zero or non-finite, an
    anchor is non-finite or beyond float16 range, or ``inr`` is not JSON-serialisable. Tensors
    live on the CPU: retrieval is one small matrix product and the anchors are copied to the
    caller's device only once they are chosen.
    """

    def __init__(
        self,
        image_embeds: torch.Tensor,
        anchors: Mapping[str, torch.Tensor],
        captions: Sequence[str],
        encoder: str,
        inr: Mapping[str, Any],
        text_embeds: torch.Tensor | None = None,
    ) -> None:
        if not isinstance(encoder, str) or not encoder:
            raise ValueError(f"encoder must be a non-empty name, got {encoder!r}")
        if not isinstance(inr, Mapping):
            raise ValueError(f"inr must be the INR config as a dict, got {type(inr).__name__}")
        try:  # a JSON copy: the bank owns it, and it compares equal after a save/load
            inr = json.loads(json.dumps(dict(inr), allow_nan=False))
        except (TypeError, ValueError) as err:
            raise ValueError(f"inr must be JSON-serialisable: {err}") from err
        if isinstance(captions, str) or not all(isinstance(c, str) for c in captions):
            raise ValueError("captions must be a list of strings, one per anchor")
        image_embeds = _embeddings(image_embeds, "image_embeds")
        size, dim = image_embeds.shape
        if text_embeds is not None:
            text_embeds = _embeddings(text_embeds, "text_embeds")
            if text_embeds.shape != image_embeds.shape:
                raise ValueError(
                    f"text_embeds is {tuple(text_embeds.shape)} but image_embeds is "
                    f"{(size, dim)}: one text embedding per anchor, of the same size"
                )
        if len(captions) != size:
            raise ValueError(f"{len(captions)} captions for {size} anchors")
        self.image_embeds = image_embeds
        self.text_embeds = text_embeds
        self.anchors = _anchors(anchors, size)
        self.captions = list(captions)
        self.encoder = encoder
        self.inr: dict[str, Any] = inr

    # ------------------------------------------------------------------ properties

    def __len__(self) -> int:
        return self.image_embeds.shape[0]

    def __repr__(self) -> str:
        text = "image+text" if self.has_text else "image only"
        return (
            f"AnchorBank({len(self)} anchors, encoder={self.encoder!r}, d={self.embed_dim}, "
            f"{text}, {len(self.anchors)} INR tensors)"
        )

    @property
    def embed_dim(self) -> int:
        return self.image_embeds.shape[1]

    @property
    def has_text(self) -> bool:
        return self.text_embeds is not None

    @property
    def anchor_shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter name -> shape of one anchor's tensor: compare with the INR's state_dict."""
        return {name: tuple(t.shape[1:]) for name, t in self.anchors.items()}

    def nbytes(self) -> int:
        """Approximate stored size in bytes: the tensors plus the captions (UTF-8)."""
        tensors = [self.image_embeds, *self.anchors.values()]
        if self.text_embeds is not None:
            tensors.append(self.text_embeds)
        captions = sum(len(c.encode("utf-8")) for c in self.captions)
        return sum(t.numel() * t.element_size() for t in tensors) + captions

    # ------------------------------------------------------------------ use

    def retrieve(
        self, query: torch.Tensor, k: int, against: str = "text"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The k anchors most cosine-similar to ``query``: (indices (k,), similarities (k,)).

        Args:
            query: (d,) embedding, any device and float dtype; it is normalised here.
            k: how many; more than ``len(self)`` returns all of them.
            against: ``"text"`` compares with the caption embeddings (a text prompt, 4.5),
                ``"image"`` with the image embeddings (an image target, or e_t2i for the
                blending neighbours of 4.6).

        Returns CPU tensors, similarities in decreasing order.
        """
        if against == "text":
            if self.text_embeds is None:
                raise ValueError(
                    f"this bank has no text embeddings (encoder {self.encoder!r} was used "
                    "without a text tower); retrieve with against='image'"
                )
            embeds = self.text_embeds
        elif against == "image":
            embeds = self.image_embeds
        else:
            raise ValueError(f"against must be 'text' or 'image', got {against!r}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if not isinstance(query, torch.Tensor) or query.ndim != 1:
            shape = tuple(query.shape) if isinstance(query, torch.Tensor) else type(query)
            raise ValueError(f"query must be one (d,) embedding, got {shape}")
        if query.shape[0] != self.embed_dim:
            raise ValueError(
                f"query has size {query.shape[0]} but the bank's embeddings have size "
                f"{self.embed_dim} (encoder {self.encoder!r})"
            )
        query = query.detach().to("cpu", torch.float32)
        if not torch.isfinite(query).all():
            raise ValueError("query has non-finite values (NaN/inf)")
        if query.norm() < _MIN_NORM:
            raise ValueError("query is a zero vector: it has no direction to compare")
        similarities = embeds @ F.normalize(query, dim=0)
        values, indices = torch.topk(similarities, min(k, len(self)), sorted=True)
        return indices, values

    def anchor_state(self, index: int) -> dict[str, torch.Tensor]:
        """Anchor ``index``'s INR state dict, as float32 copies (load it into the INR)."""
        i = operator.index(index)  # also takes a 0-d integer tensor from ``retrieve``
        if not 0 <= i < len(self):
            raise IndexError(f"anchor index {i} is out of range for a bank of {len(self)}")
        return {name: t[i].to(torch.float32, copy=True) for name, t in self.anchors.items()}

    def check_compatible(self, encoder_name: str, embed_dim: int) -> None:
        """Raise ``CheckpointError`` unless the bank was built with this encoder and size.

        Embeddings of two encoders live in unrelated spaces: retrieving with the wrong one
        gives meaningless neighbours, silently, so we refuse it here.
        """
        if encoder_name != self.encoder or embed_dim != self.embed_dim:
            raise CheckpointError(
                f"this bank was built with {self.encoder} (d={self.embed_dim}); the loaded "
                f"encoder is {encoder_name} (d={embed_dim}): build a bank with {encoder_name} "
                f"or load {self.encoder}"
            )

    # ------------------------------------------------------------------ I/O

    def save(self, folder: str | os.PathLike) -> None:
        """Write ``bank.safetensors`` and ``bank.json`` into ``folder`` (created if needed).

        Both files are written under temporary names and then moved into place with
        ``os.replace`` (atomic on one filesystem), the JSON last: a crash leaves either the
        old bank or temporary files, never a half-written ``bank.safetensors``.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {"image_embeds": self.image_embeds.contiguous()}
        if self.text_embeds is not None:
            tensors["text_embeds"] = self.text_embeds.contiguous()
        for name, t in self.anchors.items():
            tensors[ANCHOR_PREFIX + name] = t.contiguous()
        config = {
            "format": BANK_FORMAT,
            "encoder": self.encoder,
            "embed_dim": self.embed_dim,
            "size": len(self),
            "has_text": self.has_text,
            "anchor_shapes": {name: list(shape) for name, shape in self.anchor_shapes.items()},
            "inr": self.inr,
            "captions": self.captions,
        }
        weights_tmp = folder / f".{BANK_WEIGHTS}.tmp-{os.getpid()}"
        config_tmp = folder / f".{BANK_CONFIG}.tmp-{os.getpid()}"
        try:
            save_safetensors(tensors, weights_tmp)
            config_tmp.write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
            os.replace(weights_tmp, folder / BANK_WEIGHTS)
            os.replace(config_tmp, folder / BANK_CONFIG)
        finally:
            for tmp in (weights_tmp, config_tmp):
                tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> AnchorBank:
        """Read a bank written by ``save``, refusing anything but an exact, finite match.

        Raises ``CheckpointError`` (naming the file) for: a missing file, unreadable JSON or
        safetensors, an unknown format, missing or ill-typed JSON fields, missing or unexpected
        tensors, shapes that disagree with ``bank.json``, and NaN/inf values.
        """
        folder = Path(folder)
        weights_path, config_path = folder / BANK_WEIGHTS, folder / BANK_CONFIG
        missing = [p.name for p in (weights_path, config_path) if not p.is_file()]
        if missing:
            raise CheckpointError(
                f"{folder} is not an anchor bank: missing {', '.join(missing)} "
                "(write one with AnchorBank.save)"
            )
        config = _read_bank_config(config_path)
        try:
            tensors = load_file(str(weights_path), device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(
                f"{weights_path} is not a readable safetensors file (corrupt or truncated?): {err}"
            ) from err
        size, dim = config["size"], config["embed_dim"]
        expected = {"image_embeds": (size, dim)}
        if config["has_text"]:
            expected["text_embeds"] = (size, dim)
        for name, shape in config["anchor_shapes"].items():
            expected[ANCHOR_PREFIX + name] = (size, *shape)
        problems = layout_problems(
            expected, {k: tuple(t.shape) for k, t in tensors.items()}, against=BANK_CONFIG
        )
        not_float = sorted(k for k, t in tensors.items() if not t.is_floating_point())
        if not_float:
            problems.append(f"non-floating tensors: {short_list(not_float)}")
        non_finite = sorted(
            k for k, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()
        )
        if non_finite:
            problems.append(f"non-finite values (NaN/inf) in: {short_list(non_finite)}")
        if problems:
            raise CheckpointError(
                f"{weights_path} does not match the bank {config_path.name} describes; "
                + "; ".join(problems)
            )
        # In the order bank.json lists them, which is the INR's state_dict order.
        anchors = {name: tensors[ANCHOR_PREFIX + name] for name in config["anchor_shapes"]}
        try:
            return cls(
                tensors["image_embeds"],
                anchors,
                config["captions"],
                config["encoder"],
                config["inr"],
                text_embeds=tensors.get("text_embeds"),
            )
        except ValueError as err:  # e.g. a zero embedding, or fp16 overflow written by hand
            raise CheckpointError(f"{folder} holds an invalid bank: {err}") from err

    @classmethod
    def concatenate(cls, banks: Sequence[AnchorBank]) -> AnchorBank:
        """Merge shards (e.g. one per ``accelerate`` process) into one bank, in list order.

        Refuses (ValueError) shards that differ in encoder, embedding size, INR config, INR
        parameter shapes, or in having text embeddings.
        """
        banks = list(banks)
        if not banks:
            raise ValueError("concatenate needs at least one bank")
        first = banks[0]
        for i, bank in enumerate(banks[1:], start=1):
            differences = []
            if bank.encoder != first.encoder:
                differences.append(f"encoder {bank.encoder!r} vs {first.encoder!r}")
            if bank.embed_dim != first.embed_dim:
                differences.append(f"embed_dim {bank.embed_dim} vs {first.embed_dim}")
            if bank.inr != first.inr:
                differences.append(f"INR config {bank.inr} vs {first.inr}")
            if bank.anchor_shapes != first.anchor_shapes:
                differences.append("INR parameter names/shapes")
            if bank.has_text != first.has_text:
                differences.append(f"has_text {bank.has_text} vs {first.has_text}")
            if differences:
                raise ValueError(
                    f"cannot concatenate shard {i} with shard 0: " + "; ".join(differences)
                )
        return cls(
            torch.cat([b.image_embeds for b in banks]),
            {name: torch.cat([b.anchors[name] for b in banks]) for name in first.anchors},
            [c for b in banks for c in b.captions],
            first.encoder,
            first.inr,
            text_embeds=torch.cat([b.text_embeds for b in banks]) if first.has_text else None,
        )


def stack_states(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack per-anchor INR state dicts into the ``anchors`` argument of ``AnchorBank``.

    Every state dict must have the same keys and shapes (one INR architecture); ValueError
    otherwise, naming the first anchor that differs.
    """
    states = list(states)
    if not states:
        raise ValueError("stack_states needs at least one state dict")
    reference = {name: tuple(t.shape) for name, t in states[0].items()}
    for i, state in enumerate(states[1:], start=1):
        shapes = {name: tuple(t.shape) for name, t in state.items()}
        if shapes != reference:
            raise ValueError(
                f"state dict {i} differs from state dict 0 in its keys or shapes: "
                f"{shapes} vs {reference}"
            )
    return {name: torch.stack([s[name].detach().cpu() for s in states]) for name in reference}


# ------------------------------------------------------------------ internals


def _embeddings(x: torch.Tensor, name: str) -> torch.Tensor:
    """Validate an (M, d) embedding matrix; return it L2-normalised, float32, on the CPU."""
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be an (M, d) tensor with M, d >= 1, got {shape}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be floating point, got {x.dtype}")
    x = x.detach().to("cpu", torch.float32)
    if not torch.isfinite(x).all():
        rows = [str(i) for i in torch.nonzero(~torch.isfinite(x).all(dim=1)).flatten().tolist()]
        raise ValueError(f"{name} has non-finite values (NaN/inf) in rows {short_list(rows)}")
    norms = x.norm(dim=1, keepdim=True)
    if (norms < _MIN_NORM).any():
        rows = [str(i) for i in torch.nonzero(norms.flatten() < _MIN_NORM).flatten().tolist()]
        raise ValueError(f"{name} has zero rows (no direction) at {short_list(rows)}")
    return (x / norms).contiguous()


def _anchors(anchors: Mapping[str, torch.Tensor], size: int) -> dict[str, torch.Tensor]:
    """Validate the stacked INR state dicts; return float16 CPU copies in the given order."""
    if not isinstance(anchors, Mapping) or not anchors:
        raise ValueError("anchors must be a non-empty dict: parameter name -> (M, ...) tensor")
    out = {}
    for name, t in anchors.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"anchor parameter names must be non-empty strings, got {name!r}")
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            kind = t.dtype if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"anchor tensor {name!r} must be a floating-point tensor, got {kind}")
        if t.ndim < 1 or t.shape[0] != size:
            raise ValueError(
                f"anchor tensor {name!r} has shape {tuple(t.shape)}; its leading size must be "
                f"the number of anchors, {size}"
            )
        t = t.detach().to("cpu")
        if not torch.isfinite(t).all():
            raise ValueError(f"anchor tensor {name!r} has non-finite values (NaN/inf)")
        peak = float(t.abs().max()) if t.numel() else 0.0
        if peak > _FP16_MAX:
            raise ValueError(
                f"anchor tensor {name!r} has |values| up to {peak:.3g}, beyond float16's "
                f"{_FP16_MAX:.0f}: the bank stores anchors in float16"
            )
        out[name] = t.to(ANCHOR_DTYPE).contiguous()
    return out


def _read_bank_config(path: Path) -> dict[str, Any]:
    """Read and type-check ``bank.json``; CheckpointError naming the field otherwise."""
    config = read_config(path)
    if config.get("format") != BANK_FORMAT:
        raise CheckpointError(
            f"{path} has format {config.get('format')!r}; this version reads format "
            f"{BANK_FORMAT} (a newer hubmodels may have written it)"
        )
    fields = {
        "encoder": str,
        "embed_dim": int,
        "size": int,
        "has_text": bool,
        "anchor_shapes": dict,
        "inr": dict,
        "captions": list,
    }
    missing = [f for f in fields if f not in config]
    if missing:
        raise CheckpointError(f"{path} lacks the fields {', '.join(missing)}")
    wrong = [
        f"{f} (expected {kind.__name__}, got {type(config[f]).__name__})"
        for f, kind in fields.items()
        if not isinstance(config[f], kind) or (kind is int and isinstance(config[f], bool))
    ]
    if wrong:
        raise CheckpointError(f"{path} has ill-typed fields: {', '.join(wrong)}")
    if config["size"] < 1 or config["embed_dim"] < 1:
        raise CheckpointError(
            f"{path} describes an empty bank (size {config['size']}, "
            f"embed_dim {config['embed_dim']})"
        )
    for name, shape in config["anchor_shapes"].items():
        if not isinstance(shape, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
        ):
            raise CheckpointError(f"{path}: anchor_shapes[{name!r}] must be a list of sizes")
    if not all(isinstance(c, str) for c in config["captions"]):
        raise CheckpointError(f"{path}: captions must all be strings")
    if len(config["captions"]) != config["size"]:
        raise CheckpointError(
            f"{path} lists {len(config['captions'])} captions but says size {config['size']}"
        )
    return config
