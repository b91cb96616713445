"""Write the anchor bank that ships inside the package (hubmodels/inversion/builtin_bank/).

Every photo here installs offline with scikit-image, scikit-learn or matplotlib, and each may be
redistributed (public domain, CC0, or CC BY 2.0 with the credit recorded). For each one: a
224-pixel centre square is saved as JPEG, and an anchor (a FINER of the inverter's default INR)
is fitted with adversarial weight perturbation to a blurred 64-pixel copy of that JPEG, as
``build-bank`` fits them. No encoder is involved: the inverter computes the keys (embeddings of
the photos and of the captions below) with whichever encoder it loads, and caches them.

    python experiments/build_builtin_bank.py            # about 10 minutes on a 2-core CPU
    python experiments/build_builtin_bank.py --check    # rebuild in memory, compare, write nothing
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hubmodels.hub import save_safetensors
from hubmodels.images import load_image
from hubmodels.inversion.bank import ANCHOR_PREFIX
from hubmodels.inversion.build_bank import fit_photo_anchor
from hubmodels.inversion.builtin_bank import ANCHORS, BUILTIN_DIR, MANIFEST, MANIFEST_FORMAT
from hubmodels.inversion.finer import INRConfig

SIDE = 224  # the photos' stored side: the input size of ViT-B/32 and most encoders
ANCHOR_FIT = dict(resolution=64, steps=500, lr=5e-4, gamma=5e-3, blur_sigma=1.0)  # build-bank's

PUBLIC_DOMAIN = "public domain"
CC0 = "CC0 1.0"
CC_BY = "CC BY 2.0 (https://creativecommons.org/licenses/by/2.0/)"


def _skimage(name: str):
    import skimage.data

    return lambda: getattr(skimage.data, name)()


def _sklearn(index: int):
    def load():
        from sklearn.datasets import load_sample_images

        return load_sample_images().images[index]

    return load


def _grace_hopper():
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB"))


# name -> (loader, caption, source, licence, credit). The captions are ours; the licences are
# the ones each package's documentation gives for its photo.
PHOTOS = {
    "astronaut": (
        _skimage("astronaut"),
        "a portrait photo of a smiling astronaut in an orange spacesuit beside a flag",
        "scikit-image skimage.data.astronaut",
        PUBLIC_DOMAIN,
        "NASA (Eileen Collins)",
    ),
    "chelsea": (
        _skimage("chelsea"),
        "a close-up photo of a tabby cat's face with green eyes",
        "scikit-image skimage.data.chelsea",
        CC0,
        "Stefan van der Walt",
    ),
    "coffee": (
        _skimage("coffee"),
        "a photo of a cup of espresso on a red saucer with a spoon",
        "scikit-image skimage.data.coffee",
        CC0,
        "Rachel Michetti, courtesy of Pikolo Espresso Bar",
    ),
    "rocket": (
        _skimage("rocket"),
        "a photo of a rocket on its launch pad at night under a blue sky",
        "scikit-image skimage.data.rocket",
        PUBLIC_DOMAIN,
        "SpaceX",
    ),
    "camera": (
        _skimage("camera"),
        "a black and white photo of a man looking through a camera on a tripod",
        "scikit-image skimage.data.camera",
        CC0,
        "Lav Varshney",
    ),
    "coins": (
        _skimage("coins"),
        "a black and white photo of rows of ancient Greek coins",
        "scikit-image skimage.data.coins",
        "no known copyright restrictions",
        "Brooklyn Museum",
    ),
    "hubble": (
        _skimage("hubble_deep_field"),
        "a deep space photo of many small distant galaxies on a black sky",
        "scikit-image skimage.data.hubble_deep_field",
        PUBLIC_DOMAIN,
        "NASA",
    ),
    "china": (
        _sklearn(0),
        "a photo of a tall Chinese pagoda among trees above a lake",
        "scikit-learn sklearn.datasets.load_sample_images, china.jpg",
        CC_BY,
        "danielbuechele (Flickr)",
    ),
    "flower": (
        _sklearn(1),
        "a close-up photo of an orange dahlia flower on a dark green background",
        "scikit-learn sklearn.datasets.load_sample_images, flower.jpg",
        CC_BY,
        "vultilion (Flickr)",
    ),
    "grace_hopper": (
        _grace_hopper,
        "a portrait photo of an elderly woman with glasses in a navy uniform and cap",
        "matplotlib sample data, grace_hopper.jpg",
        PUBLIC_DOMAIN,
        "U.S. Navy (Grace Hopper)",
    ),
}


def centre_square_jpeg(array: np.ndarray) -> bytes:
    """The photo's centre square at SIDE x SIDE pixels, RGB, as JPEG bytes (quality 90)."""
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    h, w = array.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = Image.fromarray(array[top : top + side, left : left + side, :3].astype(np.uint8))
    buffer = io.BytesIO()
    square.resize((SIDE, SIDE), Image.LANCZOS).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def build(folder: Path, write: bool) -> dict[str, torch.Tensor]:
    inr = INRConfig()
    photos, anchors = [], {}
    for index, (name, (load, caption, source, licence, credit)) in enumerate(PHOTOS.items()):
        started = time.perf_counter()
        jpeg = centre_square_jpeg(load())
        file = f"photos/{name}.jpg"
        if write:
            (folder / "photos").mkdir(parents=True, exist_ok=True)
            (folder / file).write_bytes(jpeg)
        state = fit_photo_anchor(
            load_image(Image.open(io.BytesIO(jpeg))), inr, seed=index, **ANCHOR_FIT
        )
        for key, tensor in state.items():
            anchors.setdefault(ANCHOR_PREFIX + key, []).append(tensor.to(torch.float16))
        photos.append(
            dict(
                name=name,
                file=file,
                caption=caption,
                source=source,
                licence=licence,
                credit=credit,
                sha256=hashlib.sha256(jpeg).hexdigest(),
            )
        )
        print(f"{name}: anchor fitted in {time.perf_counter() - started:.0f} s", flush=True)
    stacked = {key: torch.stack(tensors) for key, tensors in anchors.items()}
    if write:
        manifest = dict(
            format=MANIFEST_FORMAT, inr=inr.to_dict(), anchor_fit=ANCHOR_FIT, photos=photos
        )
        save_safetensors(stacked, folder / ANCHORS)
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return stacked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BUILTIN_DIR)
    parser.add_argument(
        "--check", action="store_true", help="rebuild in memory and compare with --out"
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    stacked = build(args.out, write=not args.check)
    if args.check:
        from safetensors.torch import load_file

        shipped = load_file(str(args.out / ANCHORS))
        worst = max(float((stacked[k].float() - shipped[k].float()).abs().max()) for k in shipped)
        print(f"largest difference from the shipped anchors: {worst:.3g}")
    else:
        size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
        print(f"wrote {args.out}: {len(PHOTOS)} photos, {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
