"""Uploads of every kind become (1, 3, H, W) tensors in [0, 1], or a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from hubmodels.images import (
    ImageInputError,
    centre_square,
    load_image,
    read_png_settings,
    save_png,
    to_pil,
)


def check(x: torch.Tensor, height: int, width: int) -> None:
    assert x.shape == (1, 3, height, width) and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 1


def test_rgb_pil_keeps_its_pixels():
    array = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    x = load_image(Image.fromarray(array))
    check(x, 20, 30)
    assert torch.equal(
        (x[0].permute(1, 2, 0) * 255).round().to(torch.uint8), torch.from_numpy(array)
    )


def test_greyscale_becomes_three_equal_channels():
    x = load_image(Image.new("L", (16, 12), 128))
    check(x, 12, 16)
    assert torch.allclose(x[0, 0], x[0, 2]) and abs(x.mean().item() - 128 / 255) < 1e-6


def test_rgba_is_composited_on_white():
    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))  # fully transparent black
    x = load_image(image)
    assert torch.allclose(x, torch.ones_like(x))


def test_sixteen_bit_keeps_its_range():
    array = np.full((12, 12), 65535 // 2, dtype=np.uint16)
    x = load_image(Image.fromarray(array))  # mode I;16
    assert abs(x.mean().item() - 0.5) < 1e-3
    x = load_image(array)  # as an array too
    assert abs(x.mean().item() - 0.5) < 1e-3


def test_huge_images_are_downscaled():
    x = load_image(torch.rand(3, 3000, 1500), max_side=512)
    check(x, 512, 256)


def test_files_are_read(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (24, 16), (255, 0, 0)).save(path)
    x = load_image(path)
    check(x, 16, 24)
    assert x[0, 0].mean() > 0.9 and x[0, 1].mean() < 0.1


@pytest.mark.parametrize(
    "source, message",
    [
        (42, "expected an image"),
        (torch.rand(2, 3, 8, 8), "must be"),
        (torch.rand(3, 4, 4), "too small"),
        (torch.full((3, 9, 9), 2.0), r"\[0, 1\]"),
        (np.zeros((8, 8, 2), dtype=np.uint8), "must be"),
        ("/definitely/not/here.png", "no image file"),
    ],
)
def test_bad_sources_are_refused(source, message):
    with pytest.raises(ImageInputError, match=message):
        load_image(source)


def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / "cut.png"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ImageInputError, match="not a readable image"):
        load_image(path)


def test_png_carries_its_settings(tmp_path):
    image = to_pil(torch.rand(1, 3, 8, 8))[0]
    settings = {"task": "text_to_image", "prompt": "a cat", "seed": 3, "steps": 400}
    path = save_png(image, tmp_path / "out" / "cat.png", settings)
    assert read_png_settings(path) == settings
    assert Image.open(path).size == (8, 8)


def test_png_replaces_a_file_whole_and_is_readable_like_any_other(tmp_path):
    import os
    import stat

    path = tmp_path / "out" / "grid.png"
    save_png(Image.new("L", (4, 4), 10), path, {"seed": 1})
    first_inode = path.stat().st_ino
    save_png(Image.new("L", (6, 6), 200), path, {"seed": 2})
    # Renamed into place (a new inode), not rewritten under a reader; no staging file left.
    assert path.stat().st_ino != first_inode
    assert read_png_settings(path) == {"seed": 2} and Image.open(path).size == (6, 6)
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_centre_square_keeps_the_middle():
    image = torch.zeros(1, 3, 30, 40)
    image[..., :, 5:35] = 1.0  # the central 30x30 square is white, the side bands black
    square = centre_square(image, 15)
    assert square.shape == (1, 3, 15, 15) and torch.allclose(square, torch.ones_like(square))
