"""The validation protocol that chose the sampler's defaults (docs/sampling.md).

Kept apart from the reported study: sampling seed 100, a few samples a class, Frechet distance
in an independent judge's features against a random 10,000 training images, the judge's
recognition rate, the pixel copy ratio and the distinct-nearest-neighbour share. One line per
setting, each given as JSON ``RobustClassifier.sample`` keywords.

    python experiments/sampler_tuning.py --model fmnist-smallcnn-der \
        --judge runs/judge-standard-seed1/best --n-per-class 40 \
        '{"init": "local_pca", "scale": 1.5, "momentum": 0.25}' \
        '{"init": "pca", "scale": 0.39, "momentum": 0, "noise_std": 0.00126}'
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from hubmodels import RobustClassifier
from hubmodels.metrics import classifier_extractor, copy_report, extract_features, frechet_distance
from hubmodels.training.data import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--judge", required=True, help="an independently trained classifier")
    parser.add_argument("--n-per-class", type=int, default=40)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("settings", nargs="+", help="JSON sample() keywords, one per row")
    args = parser.parse_args()

    splits = load_dataset("fashion-mnist", augment=False, val_size=0)
    train_x = torch.stack([splits.train[i][0] for i in range(len(splits.train))])
    test_x = torch.stack([splits.test[i][0] for i in range(len(splits.test))])
    test_y = splits.test.labels
    extractor = classifier_extractor(RobustClassifier.from_pretrained(args.judge))
    pick = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(0))[:10_000]
    reference, _ = extract_features(train_x[pick], extractor, 1000)
    real, _ = extract_features(test_x[:4000], extractor, 1000)
    print(f"real test images: FD {frechet_distance(reference, real):.2f}")
    model = RobustClassifier.from_pretrained(args.model)
    for text in args.settings:
        settings = json.loads(text)
        started = time.perf_counter()
        out = model.sample(None, args.n_per_class, seed=args.seed, **settings)
        seconds = time.perf_counter() - started
        labels = torch.tensor(out.labels)
        features, logits = extract_features(out.tensors, extractor, 1000)
        copying = copy_report(out.tensors, train_x, test_x, labels, test_y)
        print(
            f"{text}: FD {frechet_distance(reference, features):.2f}, recognised "
            f"{(logits.argmax(1) == labels).double().mean():.3f}, copy ratio "
            f"{copying['copy_ratio']:.2f}, distinct NN {copying['distinct_nn']:.2f} "
            f"(test {copying['distinct_nn_ref']:.2f}), mean steps "
            f"{sum(out.steps) / len(out.steps):.1f}, {seconds:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
