"""Samples over their nearest training images: the picture that tells generation from copying.

Reads the samples the sampling study cached (``experiments/sampling_ablation.py``) and draws,
for each class, a row of samples and below it the training image nearest to each (pixel L2
over all 60,000).

    python experiments/nearest_figure.py runs/sampling-study/samples-HASH.pt \
        docs/figures/sampling/weat_default_nearest.png
"""

from __future__ import annotations

import argparse

import torch
from torchvision.utils import make_grid

from hubmodels.images import to_pil
from hubmodels.metrics import nearest_neighbours
from hubmodels.training.data import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("samples", help="a samples-*.pt file of the sampling study")
    parser.add_argument("out", help="PNG to write")
    parser.add_argument("--per-class", type=int, default=8)
    args = parser.parse_args()
    cached = torch.load(args.samples, weights_only=True)
    images, labels = cached["images"], cached["labels"]
    train = load_dataset("fashion-mnist", augment=False, val_size=0).train
    train_x = torch.stack([train[i][0] for i in range(len(train))])
    rows = []
    for c in labels.unique():
        mine = images[torch.nonzero(labels == c).flatten()[: args.per_class]]
        _, index = nearest_neighbours(mine, train_x)
        rows += [mine, train_x[index]]
    grid = make_grid(torch.cat(rows), nrow=args.per_class, padding=1, pad_value=1.0)
    picture = to_pil(grid[None, :1])[0]
    picture.resize((picture.width * 2, picture.height * 2)).save(args.out)


if __name__ == "__main__":
    main()
