"""A strict reader for IDX files, the format of MNIST and Fashion-MNIST.

IDX (LeCun et al., http://yann.lecun.com/exdb/mnist/) is a 4-byte magic number
``0x00 0x00 <dtype> <ndim>``, then ``ndim`` big-endian uint32 sizes, then the raw array. The
released files are gzipped; torchvision's downloader keeps both the ``.gz`` and an extracted copy,
so this reader accepts either and decides by the gzip signature, not the file name.

Reading with numpy is about ten times faster than going through PIL per image, and the result is
one uint8 array that the data registry keeps in memory. Every check here fails loudly with the path
and what was wrong, because a truncated download otherwise shows up much later as a shape error or,
worse, as a model quietly trained on garbage.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

# Only the unsigned-byte type code is used by (Fashion-)MNIST; other IDX types are refused
# rather than half-supported.
_UBYTE = 0x08
_GZIP_SIGNATURE = b"\x1f\x8b"


class IDXFormatError(ValueError):
    """An IDX file is missing, truncated, or not the array it should be."""


def read_idx(path: str | os.PathLike[str], *, ndim: int) -> np.ndarray:
    """Read an unsigned-byte IDX file (optionally gzipped) into a uint8 array.

    Args:
        path: the ``.gz`` or extracted IDX file.
        ndim: the number of dimensions the caller expects (3 for images, 1 for labels); a file
            with another rank is an error, which catches swapped image/label paths.

    Returns:
        A writable uint8 array with the shape stored in the header.

    Raises:
        IDXFormatError: on a corrupt gzip stream, a wrong magic number, or a size mismatch.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_SIGNATURE:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise IDXFormatError(
                f"{path}: the gzip stream is corrupt or truncated ({err}). Delete the file and "
                "reinstall or re-download it."
            ) from err

    header_len = 4 + 4 * ndim
    if len(raw) < 4:
        raise IDXFormatError(f"{path}: {len(raw)} bytes is too short for an IDX header.")
    zero0, zero1, dtype_code, file_ndim = raw[:4]
    if zero0 != 0 or zero1 != 0 or dtype_code != _UBYTE or file_ndim != ndim:
        raise IDXFormatError(
            f"{path}: bad IDX magic number {raw[:4].hex()} (expected 0000{_UBYTE:02x}{ndim:02x}: "
            f"unsigned bytes, {ndim} dimensions). Is this the right file?"
        )
    if len(raw) < header_len:
        raise IDXFormatError(f"{path}: {len(raw)} bytes is too short for an IDX header.")

    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape))
    actual = len(raw) - header_len
    if actual != expected:
        raise IDXFormatError(
            f"{path}: the header promises shape {shape} ({expected} bytes) but the file holds "
            f"{actual} bytes of data; it is truncated or corrupt."
        )
    # frombuffer over bytes is read-only; copy once so torch.from_numpy gets a writable array.
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(shape).copy()


def read_idx_pair(
    images_path: str | os.PathLike[str], labels_path: str | os.PathLike[str], *, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Read a matching (images, labels) pair: uint8 (N, H, W) and int64 (N,).

    Checks that the counts agree and that every label is in ``[0, num_classes)``.
    """
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1).astype(np.int64)
    if len(images) != len(labels):
        raise IDXFormatError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} "
            "labels; the two files do not belong together."
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise IDXFormatError(
            f"{labels_path}: labels span [{labels.min()}, {labels.max()}], outside "
            f"[0, {num_classes})."
        )
    return images, labels
