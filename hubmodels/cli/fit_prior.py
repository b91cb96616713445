"""``python -m hubmodels fit-prior``: fit the sampling priors and store them in the checkpoint."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from hubmodels.sampling.priors import PriorShape

HELP = "fit and store the sampling priors (train already fits one; this refits it)"
PRIOR_HELP = {
    "components": "principal components of each class PCA",
    "clusters": "k-means clusters per class (the local PCA mixture)",
    "local_components": "principal components of each cluster's PCA",
    "min_cluster_size": "smaller clusters are dissolved (no start is near one image)",
    "retained_variance": "share of variance the kept components must explain",
    "cluster_space": "cluster in pixel space or in the model's features",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="preset name, folder or hub id")
    parser.add_argument("--data", help="dataset of the registry (default: the model's)")
    parser.add_argument("--data-root", help="folder holding the data (default: the registry's)")
    parser.add_argument(
        "--max-per-class",
        type=int,
        help="training images used per class (default: as many as the run trained on, "
        "from its --train-subset, else all)",
    )
    parser.add_argument(
        "--out",
        help="folder to save the model with its prior (default: --model when it is a folder)",
    )
    for f in dataclasses.fields(PriorShape):
        flag = "--" + f.name.replace("_", "-")
        parser.add_argument(flag, type=type(f.default), default=f.default, help=PRIOR_HELP[f.name])


def run(args: argparse.Namespace) -> None:
    from hubmodels.classifiers import RobustClassifier
    from hubmodels.training.data import load_dataset

    model = RobustClassifier.from_pretrained(args.model)
    splits = load_dataset(args.data or model.config["dataset"], root=args.data_root, augment=False)
    train = splits.train
    labels = train.labels
    num_classes = model.config["num_classes"]
    per_class = args.max_per_class
    subset = model.config["training"].get("train_subset")
    if per_class is None and subset:  # a 1,000-image run: its prior needs no 59,000 images
        per_class = max(1, int(subset) // num_classes)
    chosen = torch.cat(
        [torch.nonzero(labels == y).flatten()[:per_class] for y in range(num_classes)]
    )
    images = torch.stack([train[int(i)][0] for i in chosen])
    shape = PriorShape(**{f.name: getattr(args, f.name) for f in dataclasses.fields(PriorShape)})
    model.fit_prior(images, labels[chosen], shape)
    target = args.out or (args.model if Path(args.model).is_dir() else None)
    if target is None:
        raise ValueError("pass --out DIR: a preset or hub id cannot be written in place")
    model.save_pretrained(target)
    size = (Path(target) / "model.safetensors").stat().st_size / 2**20
    print(f"prior fitted on {len(chosen)} images; saved to {target} ({size:.1f} MiB)")
