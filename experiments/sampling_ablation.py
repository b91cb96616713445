"""Which start and which sampler generate best? (WEAT 2.7, DER 3.5; issue: sampling, part 4.)

For one model: every start (uniform noise, class Gaussian, class PCA, local PCA) times every
sampler (plain descent of E(x, y), energy guidance, guidance + adaptive stopping), scored by FID
and KID against real test images, judge accuracy and per-class diversity, with the mean number
of SGLD steps. Then ``--compare`` runs one sampler on several models (standard vs robust).
Prints Markdown tables and writes a sample grid per cell under ``--grids``.

    python experiments/sampling_ablation.py --model fmnist-smallcnn-der --n-per-class 1000 \
        --judge runs/judge/best --fid-weights PATH/default_1.pt
    python experiments/sampling_ablation.py --compare fmnist-smallcnn-standard \
        fmnist-smallcnn-pgdat fmnist-smallcnn-trades fmnist-smallcnn-weat fmnist-smallcnn-der \
        --init local_pca --sampler adaptive ...
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from hubmodels import RobustClassifier
from hubmodels.metrics import (
    classifier_extractor,
    extract_features,
    fid_kid,
    inception_extractor,
    judge_report,
)
from hubmodels.sampling.sampler import to_pil
from hubmodels.training.data import load_dataset

SAMPLERS = {
    "plain": dict(guidance=False, adaptive_stop=False),
    "guidance": dict(guidance=True, adaptive_stop=False),
    "adaptive": dict(guidance=True, adaptive_stop=True),
}
INITS = ("uniform", "gaussian", "pca", "local_pca")


def score(model, judge, extractor, real_features, init, sampler, args) -> dict:
    started = time.time()
    out = model.sample(
        None,
        args.n_per_class,
        seed=args.seed,
        init=init,
        steps=args.steps,
        step_size=args.step_size,
        scale=args.scale,
        tolerance=args.tolerance,
        **SAMPLERS[sampler],
    )
    seconds = time.time() - started
    labels = torch.tensor(out.labels)
    quality = fid_kid(real_features, out.tensors, extractor)
    judged = judge_report(judge, out.tensors, labels)
    grid = Path(args.grids) / f"{Path(str(args.current)).name}-{init}-{sampler}.png"
    save_grid(out.tensors, labels, grid, per_class=10)
    return {
        "fid": quality["fid"],
        "kid": quality["kid_mean"],
        "judge_acc": judged["judge_accuracy"],
        "diversity": judged["diversity_mean"],
        "steps": sum(out.steps) / len(out.steps),
        "seconds": seconds,
        "grid": str(grid),
    }


def save_grid(images: torch.Tensor, labels: torch.Tensor, path: Path, per_class: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    classes = sorted(set(labels.tolist()))
    size = images.shape[-1]
    grid = Image.new(
        "L" if images.shape[1] == 1 else "RGB", (per_class * (size + 1), len(classes) * (size + 1))
    )
    for row, c in enumerate(classes):
        for k, image in enumerate(to_pil(images[labels == c][:per_class])):
            grid.paste(image, (k * (size + 1), row * (size + 1)))
    grid.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="the model of the start x sampler ablation")
    parser.add_argument("--compare", nargs="*", help="models to compare with one sampler")
    parser.add_argument("--init", default="local_pca", help="start for --compare")
    parser.add_argument("--sampler", default="adaptive", choices=SAMPLERS, help="for --compare")
    parser.add_argument("--judge", required=True, help="an independently trained classifier")
    parser.add_argument("--fid-weights", help="TorchScript FID Inception (default: the judge)")
    parser.add_argument("--n-per-class", type=int, default=1000)
    parser.add_argument(
        "--n-real", type=int, default=10000, help="real test images (the first N) for FID / KID"
    )
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--step-size", type=float, default=0.8)
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--tolerance", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grids", default="docs/figures/sampling")
    args = parser.parse_args()

    judge = RobustClassifier.from_pretrained(args.judge)
    extractor = (
        inception_extractor(args.fid_weights) if args.fid_weights else classifier_extractor(judge)
    )
    test = load_dataset(judge.config["dataset"]).test
    # The Inception pass costs about 0.14 s per image on a 2-core CPU, so it may use fewer.
    real = torch.stack([test[i][0] for i in range(min(args.n_real, len(test)))])
    real_features, _ = extract_features(real, extractor)
    print(
        f"FID/KID: {extractor.name} at {extractor.resolution}px, {len(real)} real test images, "
        f"{args.n_per_class} samples per class; judge {args.judge}"
    )

    header = "| {} | start | sampler | FID | KID | judge acc | diversity | mean steps | s |"
    rule = "|---|---|---|---|---|---|---|---|---|"
    cells = [(args.model, i, s) for i in INITS for s in SAMPLERS] if args.model else []
    cells += [(m, args.init, args.sampler) for m in args.compare or []]
    print(header.format("model"))
    print(rule)
    for name, init, sampler in cells:
        args.current = name
        model = RobustClassifier.from_pretrained(name)
        r = score(model, judge, extractor, real_features, init, sampler, args)
        print(
            f"| {name} | {init} | {sampler} | {r['fid']:.2f} | {r['kid']:.4f} | "
            f"{r['judge_acc']:.3f} | {r['diversity']:.3f} | {r['steps']:.1f} | "
            f"{r['seconds']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
