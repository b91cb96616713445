"""The anchor bank that ships inside the package, for whichever encoder the inverter uses.

A bank pairs INR anchors with encoder embeddings (``bank``, docs/methods.md 4.1, 4.4). The
anchors depend only on the photos and the INR: each is a FINER fitted under adversarial weight
perturbation to a blurred copy of a photo. Only the retrieval keys, the photo's image embedding
and its caption's text embedding, depend on the encoder. So the package ships the encoder-free
half, in ``builtin_bank/``:

* ``manifest.json``: the INR the anchors were fitted for, how they were fitted, and per photo its
  file, a caption we wrote, where it comes from, its licence and credit, and its SHA-256;
* ``anchors.safetensors``: the anchors, ``anchor.<INR parameter>`` stacked over photos, float16;
* ``photos/``: each photo, centre-cropped to a 224-pixel square (JPEG).

and computes the keys on first use with the configured encoder, exactly as ``build-bank``
computes them (the augmentation-averaged image embedding, the caption's text embedding). The
keys are cached on disk under a digest of the encoder's name, its weights' hash, the manifest
and the augmentations, so a second inverter on the same encoder reads them in milliseconds and
any change of encoder, weights or bank rebuilds them. The cache lives in ``$HUBMODELS_CACHE``,
else ``$XDG_CACHE_HOME/hubmodels``, else ``~/.cache/hubmodels``; a cache that cannot be read or
written is rebuilt or skipped, never an error.

``experiments/build_builtin_bank.py`` writes the shipped files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from hubmodels.cache import cache_dir as default_cache_dir
from hubmodels.hub import CheckpointError, save_safetensors
from hubmodels.inversion.bank import ANCHOR_PREFIX, AnchorBank

BUILTIN_DIR = Path(__file__).with_name("builtin_bank")
MANIFEST = "manifest.json"
ANCHORS = "anchors.safetensors"
MANIFEST_FORMAT = 1
_KEYS_FORMAT = 1  # bump when the way keys are computed changes: old caches are then ignored

log = logging.getLogger(__name__)


def read_manifest(folder: Path | None = None) -> dict[str, Any]:
    """The shipped bank's manifest: ``inr``, ``anchor_fit`` and ``photos`` (a list of dicts with
    ``name``, ``file``, ``caption``, ``source``, ``licence``, ``credit``, ``sha256``)."""
    path = (folder or BUILTIN_DIR) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"the shipped anchor bank's {path} is unreadable: {err}") from err
    if manifest.get("format") != MANIFEST_FORMAT or not manifest.get("photos"):
        raise CheckpointError(f"{path} is not a format-{MANIFEST_FORMAT} bank manifest")
    return manifest


def builtin_inr(folder: Path | None = None) -> dict[str, Any]:
    """The INR config (``INRConfig.to_dict()``) the shipped anchors were fitted for."""
    return dict(read_manifest(folder)["inr"])


def builtin_bank(
    encoder,
    embed_image: Callable[[Path], torch.Tensor],
    augment: Mapping[str, Any],
    *,
    folder: Path | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> AnchorBank:
    """The shipped bank with keys from ``encoder`` (cached, see the module docstring).

    Args:
        encoder: the inverter's ``ImageEncoder``; text keys are computed when it has a text tower.
        embed_image: a photo's path -> its unit image embedding (the inverter's
            ``engine.image_embedding``, so keys live where the inverter's targets live).
        augment: the augmentation settings ``embed_image`` averages over (part of the cache key).
        cache_dir: where keys are cached; default ``hubmodels.cache.cache_dir()``.
    """
    folder = folder or BUILTIN_DIR
    manifest = read_manifest(folder)
    photos = manifest["photos"]
    anchors = _read_anchors(folder / ANCHORS, len(photos))
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache / f"builtin-bank-keys-{_keys_digest(encoder, folder, augment)}.safetensors"
    keys = _read_keys(path, len(photos), encoder.embed_dim, encoder.has_text)
    if keys is None:
        keys = _compute_keys(encoder, embed_image, folder, photos)
        _write_keys(path, keys)
    return AnchorBank(
        image_embeds=keys["image_embeds"],
        anchors=anchors,
        captions=[p["caption"] for p in photos],
        encoder=encoder.name,
        inr=manifest["inr"],
        text_embeds=keys.get("text_embeds"),
    )


# ------------------------------------------------------------------ internals


def _keys_digest(encoder, folder: Path, augment: Mapping[str, Any]) -> str:
    """What the keys depend on: the encoder and its weights, the bank, the augmentations."""
    digest = hashlib.sha256()
    identity = dict(
        format=_KEYS_FORMAT,
        encoder=encoder.name,
        weights=encoder.fingerprint(),
        embed_dim=encoder.embed_dim,
        augment=dict(augment),
    )
    digest.update(json.dumps(identity, sort_keys=True, default=str).encode())
    digest.update((folder / MANIFEST).read_bytes())  # holds every photo's SHA-256
    return digest.hexdigest()[:20]


def _read_anchors(path: Path, size: int) -> dict[str, torch.Tensor]:
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"the shipped anchors {path} are unreadable: {err}") from err
    anchors = {
        name[len(ANCHOR_PREFIX) :]: t
        for name, t in tensors.items()
        if name.startswith(ANCHOR_PREFIX)
    }
    wrong = sorted(n for n, t in anchors.items() if t.shape[0] != size)
    if not anchors or wrong or len(anchors) != len(tensors):
        raise CheckpointError(f"{path} does not hold {size} anchors (check {wrong or 'names'})")
    return anchors  # the order is irrelevant: anchors load by parameter name


def _compute_keys(
    encoder, embed_image, folder: Path, photos: list[dict]
) -> dict[str, torch.Tensor]:
    log.info("computing the shipped bank's keys with %s (cached afterwards)", encoder.name)
    image = torch.stack([embed_image(folder / p["file"]).float().cpu() for p in photos])
    keys = {"image_embeds": image}
    if encoder.has_text:
        with torch.no_grad():
            text = encoder.encode_text([p["caption"] for p in photos]).float().cpu()
        keys["text_embeds"] = text
    return keys


def _read_keys(path: Path, size: int, dim: int, has_text: bool) -> dict[str, torch.Tensor] | None:
    """Cached keys, or None when absent, unreadable or not of the expected shape."""
    if not path.is_file():
        return None
    try:
        keys = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        log.warning("ignoring the unreadable key cache %s: %s", path, err)
        return None
    expected = {"image_embeds"} | ({"text_embeds"} if has_text else set())
    if set(keys) != expected or any(
        t.shape != (size, dim) or not torch.isfinite(t).all() for t in keys.values()
    ):
        log.warning("ignoring the key cache %s: it does not fit this bank and encoder", path)
        return None
    return keys


def _write_keys(path: Path, keys: dict[str, torch.Tensor]) -> None:
    """Write atomically (a temporary file moved into place); skip quietly if we cannot."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_safetensors({k: v.contiguous() for k, v in keys.items()}, tmp)
        os.replace(tmp, path)
    except OSError as err:
        log.warning(
            "could not cache the bank's keys in %s (%s); they are rebuilt next time", path, err
        )
    finally:
        with contextlib.suppress(OSError):  # e.g. the folder is a file: nothing was written
            tmp.unlink(missing_ok=True)
