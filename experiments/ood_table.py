"""Energy-based OOD detection on every preset: AUROC and FPR@95 of the score -E(x).

In-distribution: the Fashion-MNIST test set (10,000 images). Out-of-distribution sets, all of
which install offline:

* **digits**: scikit-learn's 1,797 handwritten digits (8 x 8, 17 grey levels), upscaled to
  28 x 28 bilinearly: light strokes on black, like the garments;
* **photos**: 1,000 random square crops (side 32 px to the whole image) of scikit-image's
  sample photos, grey, resized to 28 x 28 by area averaging;
* **noise**: 1,000 images of uniform noise in [0, 1];
* **inverted**: the Fashion-MNIST test images with black and white swapped (near OOD: the same
  shapes, the wrong polarity).

FPR@95 uses the threshold each checkpoint stores (``fit-energy-reference``: 95 % of its test
images are accepted), so it is the number the Space's verdict would give.

    python experiments/ood_table.py
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from hubmodels import RobustClassifier
from hubmodels.metrics import fpr_at_tpr, ood_auroc
from hubmodels.training.data import load_dataset

PRESETS = ("standard", "pgdat", "trades", "weat", "der")
PHOTOS = ("astronaut", "camera", "coffee", "chelsea", "rocket", "immunohistochemistry", "moon")


def digits() -> torch.Tensor:
    from sklearn.datasets import load_digits

    x = torch.tensor(load_digits().images, dtype=torch.float32)[:, None] / 16.0
    return F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False).clamp(0, 1)


def photos(n: int, seed: int) -> torch.Tensor:
    from skimage import data
    from skimage.color import rgb2gray

    generator = torch.Generator().manual_seed(seed)
    greys = []
    for name in PHOTOS:
        image = getattr(data, name)()
        image = rgb2gray(image) if image.ndim == 3 else image / 255.0
        greys.append(torch.tensor(image, dtype=torch.float32))
    crops = []
    for i in range(n):
        grey = greys[i % len(greys)]
        h, w = grey.shape
        side = int(torch.randint(32, min(h, w) + 1, (1,), generator=generator))
        top = int(torch.randint(0, h - side + 1, (1,), generator=generator))
        left = int(torch.randint(0, w - side + 1, (1,), generator=generator))
        crop = grey[top : top + side, left : left + side][None, None]
        crops.append(F.interpolate(crop, size=(28, 28), mode="area"))
    return torch.cat(crops).clamp(0, 1)


def noise(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def energies(model: RobustClassifier, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model.energy(x[i : i + batch]) for i in range(0, len(x), batch)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=[f"fmnist-smallcnn-{p}" for p in PRESETS])
    parser.add_argument("--n", type=int, default=1000, help="photo crops and noise images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    test = load_dataset("fashion-mnist", augment=False, val_size=0).test
    inside = torch.stack([test[i][0] for i in range(len(test))])
    outside = {
        "digits": digits(),
        "photos": photos(args.n, args.seed),
        "noise": noise(args.n, args.seed),
        "inverted": 1 - inside,
    }
    header = " | ".join(f"{name} AUROC / FPR@95" for name in outside)
    print(f"| model | {header} |")
    print("|---" * (len(outside) + 1) + "|")
    for name in args.models:
        model = RobustClassifier.from_pretrained(name)
        if model.energy_reference is None:
            raise SystemExit(f"{name} stores no energy reference: run fit-energy-reference")
        threshold = -float(model.energy_reference.threshold)  # in score units, -E
        score_in = -energies(model, inside)
        cells = []
        for x in outside.values():
            score_out = -energies(model, x)
            auroc = ood_auroc(score_in, score_out)
            fpr = fpr_at_tpr(score_in, score_out, threshold=threshold)
            cells.append(f"{auroc:.3f} / {fpr:.3f}")
        print(f"| `{name}` | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
