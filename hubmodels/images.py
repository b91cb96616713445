"""Images in and out of the package: uploads to tensors, tensors to PIL and PNG files.

The one images module: the inverter, the sampler, the energy explorer and the Space all use it.

Uploads arrive as paths, PIL images, numpy arrays or tensors, in any PIL mode (greyscale, RGBA,
palette, 16-bit) and any size. ``load_image`` turns each into a (1, 3, H, W) float tensor in
[0, 1], downscaled so its longer side is at most ``max_side`` (an 8000x8000 photo would cost
gigabytes of activations and says nothing more to a 224-pixel encoder), or raises
``ImageInputError`` saying what was wrong. ``save_png`` writes a result with the settings that
made it in the PNG's text metadata, so a downloaded image says how to reproduce it.
"""

from __future__ import annotations

import io
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, PngImagePlugin, UnidentifiedImageError

MAX_SIDE = 1024
METADATA_KEY = "hubmodels"  # PNG tEXt key holding the JSON settings


class ImageInputError(ValueError):
    """An input image that cannot be used as it is; the message says why."""


def load_image(source: Any, max_side: int = MAX_SIDE) -> torch.Tensor:
    """Any image-like ``source`` -> (1, 3, H, W) float32 in [0, 1], longer side <= ``max_side``."""
    if isinstance(source, torch.Tensor):
        return _from_tensor(source, max_side)
    if isinstance(source, np.ndarray):
        return _from_tensor(_array_to_tensor(source), max_side)
    if isinstance(source, (str, os.PathLike)):
        source = _open(Path(source))
    if not isinstance(source, Image.Image):
        raise ImageInputError(
            f"expected an image (path, PIL image, array or tensor), got {type(source).__name__}"
        )
    return _from_tensor(_pil_to_tensor(source), max_side)


def _open(path: Path) -> Image.Image:
    if not path.is_file():
        raise ImageInputError(f"no image file at {path}")
    try:
        with Image.open(path) as image:
            image.load()  # decode now, so a truncated file fails here and not later
            return image.copy()
    except Image.DecompressionBombError as err:
        raise ImageInputError(f"{path.name} is too large to decode safely: {err}") from err
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        # PIL names the full path; a server must not show its folders to a visitor.
        reason = str(err).replace(str(path), path.name)
        raise ImageInputError(f"{path.name} is not a readable image: {reason}") from err


def _pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL image in any mode -> (3, H, W) in [0, 1]."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit grey: keep the precision
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        grey = torch.from_numpy(array / peak).float().clamp(0, 1)
        return grey.expand(3, *grey.shape).clone()
    if image.mode == "F":
        grey = torch.from_numpy(np.asarray(image, dtype=np.float32)).clamp(0, 1)
        return grey.expand(3, *grey.shape).clone()
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Composite on white: transparent areas of logos and cut-outs look like paper, not black.
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(canvas, rgba)
    array = np.array(image.convert("RGB"), dtype=np.uint8)  # a writable copy for torch
    return torch.from_numpy(array).permute(2, 0, 1).float() / 255.0


def _array_to_tensor(array: np.ndarray) -> torch.Tensor:
    """(H, W), (H, W, C) arrays, uint8 / uint16 / float in [0, 1] -> (C, H, W) tensor."""
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ImageInputError(f"an image array must be (H, W) or (H, W, 1|3|4), got {array.shape}")
    if array.dtype == np.uint8:
        tensor = torch.from_numpy(array.astype(np.float32) / 255.0)
    elif array.dtype == np.uint16:
        tensor = torch.from_numpy(array.astype(np.float32) / 65535.0)
    elif np.issubdtype(array.dtype, np.floating):
        tensor = torch.from_numpy(array.astype(np.float32))
    else:
        raise ImageInputError(f"unsupported image array dtype {array.dtype}")
    return tensor.permute(2, 0, 1)


def _from_tensor(tensor: torch.Tensor, max_side: int) -> torch.Tensor:
    """(C, H, W) or (1, C, H, W) with C in 1, 3, 4 -> checked (1, 3, H', W')."""
    x = tensor.detach().float().cpu()
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 3 or x.shape[0] not in (1, 3, 4):
        raise ImageInputError(
            f"an image tensor must be (C, H, W) with C in 1, 3, 4, got {tuple(x.shape)}"
        )
    if not torch.isfinite(x).all():
        raise ImageInputError("the image contains NaN or infinite values")
    if x.min() < 0 or x.max() > 1:
        raise ImageInputError(
            f"image values must lie in [0, 1], got [{x.min().item():.3g}, {x.max().item():.3g}]"
        )
    if x.shape[0] == 4:  # composite on white, as for RGBA files
        x = x[:3] * x[3:] + (1 - x[3:])
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    height, width = x.shape[1:]
    if min(height, width) < 8:
        raise ImageInputError(f"the image is too small ({width}x{height}); use at least 8x8")
    if max(height, width) > max_side:
        ratio = max_side / max(height, width)
        size = (max(8, round(height * ratio)), max(8, round(width * ratio)))
        x = torch.nn.functional.interpolate(x[None], size=size, mode="area")[0]
    return x[None].contiguous()


def centre_square(image: torch.Tensor, size: int) -> torch.Tensor:
    """The largest centred square of (1, C, H, W), resized to (1, C, size, size).

    Renderings are square; cropping (as CLIP's own preprocessing does) keeps proportions, where
    squashing a 4:3 photo would distort every shape the INR is asked to keep.
    """
    h, w = image.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[..., top : top + side, left : left + side]
    return torch.nn.functional.interpolate(square, size=(size, size), mode="area")


def save_png(image: Image.Image, path: str | os.PathLike, settings: dict[str, Any]) -> Path:
    """Write ``image`` as PNG with ``settings`` as JSON under the ``hubmodels`` text key."""
    info = PngImagePlugin.PngInfo()
    info.add_text(METADATA_KEY, json.dumps(settings, sort_keys=True, default=str))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return write_bytes_atomically(path, buffer.getvalue())


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` under a temporary name beside ``path`` and rename it into place.

    A reader (a web server sending the file, another thread writing the same name) sees the
    old file or the new one, never half of one. The staging file is created by ``open``, so
    the result has the umask's usual mode (``tempfile.mkstemp`` would leave it 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        staging.write_bytes(data)
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return path


def read_png_settings(path: str | os.PathLike) -> dict[str, Any]:
    """The settings ``save_png`` embedded in a PNG (an empty dict when there are none)."""
    with Image.open(path) as image:
        text = image.info.get(METADATA_KEY)
    return json.loads(text) if text else {}


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """(N, C, H, W) in [0, 1] -> PIL images ("L" for one channel, "RGB" for three)."""
    array = (images.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
    array = array.permute(0, 2, 3, 1).numpy()
    if array.shape[-1] == 1:
        return [Image.fromarray(a[..., 0], mode="L") for a in array]
    return [Image.fromarray(a, mode="RGB") for a in array]


def image_grid(
    images: torch.Tensor,
    columns: int,
    *,
    padding: int = 2,
    pad_value: float = 1.0,
    scale: int = 1,
) -> Image.Image:
    """(N, C, H, W) in [0, 1] -> one PIL image, ``columns`` images a row (torchvision's
    ``make_grid``), every pixel enlarged ``scale`` times without smoothing."""
    from torchvision.utils import make_grid

    grid = make_grid(
        images.detach().float().cpu().clamp(0, 1),
        nrow=columns,
        padding=padding,
        pad_value=pad_value,
    )
    if images.shape[1] == 1:
        grid = grid[:1]  # make_grid repeats a single channel three times
    picture = to_pil(grid[None])[0]
    if scale == 1:
        return picture
    return picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
