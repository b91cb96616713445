"""``python -m hubmodels fit-energy-reference``: the energy explorer's reference, stored in the
checkpoint (a histogram of E(x) over real test images and the OOD threshold)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "store real test images' E(x) histogram and OOD threshold (the energy explorer)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="preset name, folder or hub id")
    parser.add_argument("--data", help="dataset of the registry (default: the model's)")
    parser.add_argument("--data-root", help="folder holding the data")
    parser.add_argument("--num-images", type=int, default=10000, help="test images used")
    parser.add_argument("--bins", type=int, default=60, help="histogram bins")
    parser.add_argument("--tpr", type=float, default=0.95, help="in-distribution share kept")
    parser.add_argument("--out", help="folder to save to (default: --model when a folder)")


def run(args: argparse.Namespace) -> None:
    import torch

    from hubmodels.classifiers import RobustClassifier
    from hubmodels.explorer import ReferenceShape
    from hubmodels.training.data import load_dataset

    model = RobustClassifier.from_pretrained(args.model)
    target = args.out or (args.model if Path(args.model).is_dir() else None)
    if target is None:
        raise ValueError("pass --out DIR: a preset or hub id cannot be written in place")
    dataset = args.data or model.config["dataset"]
    test = load_dataset(dataset, root=args.data_root, augment=False).test
    n = min(args.num_images, len(test))
    images = torch.stack([test[i][0] for i in range(n)])
    shape = ReferenceShape(bins=args.bins, tpr=args.tpr, source=f"{dataset} test, {n} images")
    model.fit_energy_reference(images, shape)
    model.save_pretrained(target)
    threshold = float(model.energy_reference.threshold)
    print(f"energy reference of {shape.source}: OOD when E(x) > {threshold:.3f}; saved to {target}")
