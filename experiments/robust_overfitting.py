"""Robust overfitting (WEAT sec. 3, DER; docs/methods.md 2.1, 3.4) on a Fashion-MNIST subset.

A long multi-step AT schedule on little data overfits robustly: the PGD validation accuracy
peaks and then falls while training accuracy keeps rising, and WEAT reports that dE(x) drifts
negative for PGD-AT while staying near 0 for WEAT_adv. This script trains PGD-AT, TRADES,
WEAT_adv and PGD-AT + DER with the piecewise schedule of Rice et al. on a training subset, plots
the dE(x) curves next to the PGD validation error and prints best / last PGD-20 validation
accuracy, their gap (the size of robust overfitting; also of 5-epoch means, which a lucky epoch
cannot inflate), the last training-adversarial accuracy (how far the subset is memorised), the
first alarm epoch, and the PGD-20 accuracy of the best and last checkpoints on the first
``--test-images`` test images (the best epoch was picked on validation; the test split is not
biased by that pick).

    python experiments/robust_overfitting.py --train-subset 2000 --epochs 120 --jobs 4
    python experiments/robust_overfitting.py --train-subset 1000 --no-augment --val-size 500 \
        --epochs 60 --methods PGD-AT PGD-AT+DER WEAT_adv
    python experiments/robust_overfitting.py --architecture small_cnn_wide --train-subset 500 \
        --no-augment --val-size 500 --epochs 40 --label-noise 0.4 --seeds 0 1 \
        --methods PGD-AT TRADES WEAT_adv WEAT_adv[weights] PGD-AT+DER \
        --der adversarial,squared adversarial,joint --runs runs/ro-noise --jobs 2

An epoch of each run took 2.2 s for the first (four runs at once on one H100) and about 12.5 s
for the second (one at a time on the 2-core CPU); the third, the regime where PGD-AT overfits
robustly (40 % of the subset's labels wrong; docs/experiments.md), 22-27 s per run with one CPU
thread each. ``--der POINT,FORM ...`` picks the DER variants (the trainer's ``--der-at``,
``--der-form``), ``--der-lambdas`` adds them at other weights, ``--methods`` may add
WEAT_adv[weights] (WEAT's sum divided by the sum of the weights: TRADES's step size), and
``--label-smoothings`` PGD-AT with label smoothing (a plain confidence penalty, the control for
how DER prevents robust overfitting here).
Interrupted? Run the same command again: finished runs are skipped, others resume, and runs
archived in experiments/results/<name of --runs>/ (committed) are read from there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from grid import (
    add_archive_option,
    archive_folder,
    checkpoint_test_accuracy,
    drop_untrained,
    ensure_runs,
    first_alarm,
    plot_runs,
)
from grid import slug as _slug

METHODS = {
    "PGD-AT": ["--method", "pgd_at"],
    "TRADES": ["--method", "trades"],
    "WEAT_adv": ["--method", "weat_adv"],
    # WEAT's weighted sum divided by the sum of the weights, not by B: TRADES's step size.
    "WEAT_adv[weights]": ["--method", "weat_adv", "--weat-reduction", "weights"],
    "PGD-AT+DER": ["--method", "pgd_at", "--der-lambda", "1"],
}


def der_variant(spec: str) -> tuple[str, list[str]]:
    """ "POINT,FORM" -> (label suffix, trainer flags). The squared form at the adversarial, DER's
    first form here, adds no suffix, so its runs keep the label and folders (and archives) of
    the runs made before ``--der`` existed; its flag is explicit, for the trainer's default is
    now the joint form."""
    if spec == "adversarial,squared":
        return "", ["--der-form", "squared"]
    point, _, form = spec.partition(",")
    return f"[{spec}]", ["--der-at", point, "--der-form", form]


def smoothed_gap(history: list[dict], window: int = 5) -> float:
    """Best minus last PGD accuracy of the ``window``-epoch moving average.

    The plain best-minus-last gap picks the luckiest of many noisy epochs (one epoch's accuracy
    on 500 images has a standard error of about 2 points), so it is positive with no overfitting
    at all; averaging over a window first takes most of that selection bias out.
    """
    acc = [h["val_pgd_acc"] for h in history]
    if len(acc) < window:
        return float("nan")
    means = [sum(acc[i : i + window]) / window for i in range(len(acc) - window + 1)]
    return max(means) - means[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilon", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=120)
    parser.add_argument("--train-subset", type=int, default=2000)
    parser.add_argument("--attack-steps", type=int, default=7)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--architecture",
        default="small_cnn",
        help="small_cnn_wide memorises a small subset sooner at about the same cost",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=list(METHODS),
        default=["PGD-AT", "TRADES", "WEAT_adv", "PGD-AT+DER"],
    )
    parser.add_argument(
        "--der",
        nargs="+",
        default=["adversarial,squared"],
        metavar="POINT,FORM",
        help="where PGD-AT+DER measures the delta energy and its form (the trainer's --der-at, "
        "--der-form); several give one PGD-AT+DER run per variant",
    )
    parser.add_argument(
        "--der-lambdas",
        type=float,
        nargs="*",
        default=[],
        help="also PGD-AT+DER (the --der variant) at these weights, e.g. 3 10",
    )
    parser.add_argument(
        "--label-smoothings",
        type=float,
        nargs="*",
        default=[],
        help="also PGD-AT with label smoothing at these strengths (a confidence penalty: the "
        "control for how DER prevents robust overfitting), e.g. 0.1 0.3",
    )
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="random crop + flip; --no-augment lets a small model memorise sooner",
    )
    parser.add_argument(
        "--label-noise",
        type=float,
        default=0.0,
        help="fraction of the subset's labels given a wrong class (robust overfitting appears "
        "with noisy labels where it does not with clean ones)",
    )
    parser.add_argument("--val-size", type=int, default=1000, help="validation images per epoch")
    parser.add_argument(
        "--test-images",
        type=int,
        default=1000,
        help="test images on which the best and last checkpoints are attacked (PGD-20); 0: skip",
    )
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once (GPU: 4)")
    parser.add_argument(
        "--report-only", action="store_true", help="tabulate and plot the runs as they are"
    )
    parser.add_argument("--runs", default="runs/ro")
    add_archive_option(parser)
    parser.add_argument("--figure", default="docs/figures/robust_overfitting.png")
    args = parser.parse_args()

    variants = [der_variant(spec) for spec in args.der]
    methods = dict(METHODS)
    labels = []
    for label in args.methods:
        if label != "PGD-AT+DER":
            labels.append(label)
            continue
        for suffix, flags in variants:
            methods[label + suffix] = METHODS[label] + flags
            labels.append(label + suffix)
    for lam in args.der_lambdas:  # other weights: "PGD-AT+DER3[adversarial,joint]"
        for suffix, flags in variants:
            label = f"PGD-AT+DER{lam:g}{suffix}"
            methods[label] = ["--method", "pgd_at", "--der-lambda", str(lam), *flags]
            labels.append(label)
    for smoothing in args.label_smoothings:  # "PGD-AT+LS0.3"
        label = f"PGD-AT+LS{smoothing:g}"
        methods[label] = ["--method", "pgd_at", "--label-smoothing", str(smoothing)]
        labels.append(label)
    common = [
        "--dataset",
        "fashion-mnist",
        "--architecture",
        args.architecture,
        "--epsilon",
        str(args.epsilon),
        "--epochs",
        str(args.epochs),
        "--lr",
        str(args.lr),
        "--schedule",
        "piecewise",
        "--train-subset",
        str(args.train_subset),
        "--attack-steps",
        str(args.attack_steps),
        "--energy-subset",
        "500",
        "--val-size",
        str(args.val_size),
        "--augment" if args.augment else "--no-augment",
        "--label-noise",
        str(args.label_noise),
        "--no-fit-prior",  # read for robustness, never sampled from
    ]
    setting = f"n{args.train_subset}" + ("" if args.augment else "-noaug")
    if args.architecture != "small_cnn":
        setting += f"-{args.architecture.replace('_', '-')}"
    if args.epsilon != 0.1:  # the defaults keep the names of runs made before these options
        setting += f"-eps{args.epsilon:g}"
    if args.label_noise:
        setting += f"-noise{args.label_noise:g}"
    grid = {
        f"{_slug(label)}-{setting}-seed{seed}": (label, seed, methods[label])
        for label in labels
        for seed in args.seeds
    }
    runs = Path(args.runs)
    archive = archive_folder(args)
    if args.report_only:
        drop_untrained(grid, runs, archive)
    histories = ensure_runs(
        runs,
        {n: flags + common + ["--seed", str(seed)] for n, (_, seed, flags) in grid.items()},
        args.jobs,
        train=not args.report_only,
        archive=archive,
    )
    groups = {}
    print(
        "| method | seed | best PGD-20 (val) | epoch | last PGD-20 (val) | gap |"
        " gap of 5-epoch means | last train-adversarial acc | final dE(x) | first alarm |"
        " test PGD-20 best / last checkpoint | test clean best / last |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, (label, seed, _) in grid.items():
        hist = histories[name]
        if len(hist) < args.epochs:
            label = f"{label} ({len(hist)} of {args.epochs} epochs)"
        groups.setdefault(label, []).append((f"seed {seed}", hist))
        best = max(hist, key=lambda h: h["val_pgd_acc"])
        last = hist[-1]
        test = None
        if args.test_images and len(hist) == args.epochs:
            test = checkpoint_test_accuracy(runs, name, archive, images=args.test_images)
        on_test = {
            kind: "–" if test is None else f"{test['best'][kind]:.3f} / {test['last'][kind]:.3f}"
            for kind in ("pgd", "clean")
        }
        print(
            f"| {label} | {seed} | {best['val_pgd_acc']:.3f} | {best['epoch']} | "
            f"{last['val_pgd_acc']:.3f} | {best['val_pgd_acc'] - last['val_pgd_acc']:.3f} | "
            f"{smoothed_gap(hist):.3f} | {last['train_acc']:.3f} | "
            f"{last['delta_energy']:+.3f} | {first_alarm(hist)} | {on_test['pgd']} | "
            f"{on_test['clean']} |"
        )
    plot_runs(
        groups,
        Path(args.figure),
        f"Robust overfitting, {args.train_subset} Fashion-MNIST images"
        + ("" if args.augment else " (no augmentation)")
        + f", {args.architecture}, eps={args.epsilon}"
        + (f", {args.label_noise:.0%} noisy labels" if args.label_noise else ""),
    )


if __name__ == "__main__":
    main()
