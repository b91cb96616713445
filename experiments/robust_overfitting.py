"""Robust overfitting (WEAT sec. 3, DER; docs/methods.md 2.1, 3.4) on a Fashion-MNIST subset.

A long multi-step AT schedule on little data overfits robustly: the PGD validation accuracy
peaks and then falls while training accuracy keeps rising, and WEAT reports that dE(x) drifts
negative for PGD-AT while staying near 0 for WEAT_adv. This script trains PGD-AT, TRADES,
WEAT_adv and PGD-AT + DER with the piecewise schedule of Rice et al. on a training subset, plots
the dE(x) curves next to the PGD validation error and prints best / last PGD-20 validation
accuracy, their gap (the size of robust overfitting) and the first alarm epoch.

    python experiments/robust_overfitting.py --train-subset 2000 --epochs 120 --jobs 4
    python experiments/robust_overfitting.py --train-subset 1000 --no-augment --val-size 500
        --epochs 60 --methods PGD-AT PGD-AT+DER WEAT_adv

An epoch of each run took 2.2 s for the first (four runs at once on one H100) and about 12.5 s
for the second (one at a time on the 2-core CPU). Interrupted? Run the same command again:
finished runs are skipped, others resume, and runs archived in experiments/results/<name of
--runs>/ (committed) are read from there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from grid import add_archive_option, archive_folder, ensure_runs, first_alarm, plot_runs

METHODS = {
    "PGD-AT": ["--method", "pgd_at"],
    "TRADES": ["--method", "trades"],
    "WEAT_adv": ["--method", "weat_adv"],
    "PGD-AT+DER": ["--method", "pgd_at", "--der-lambda", "1"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilon", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=120)
    parser.add_argument("--train-subset", type=int, default=2000)
    parser.add_argument("--attack-steps", type=int, default=7)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="random crop + flip; --no-augment lets a small model memorise sooner",
    )
    parser.add_argument("--val-size", type=int, default=1000, help="validation images per epoch")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once (GPU: 4)")
    parser.add_argument(
        "--report-only", action="store_true", help="tabulate and plot the runs as they are"
    )
    parser.add_argument("--runs", default="runs/ro")
    add_archive_option(parser)
    parser.add_argument("--figure", default="docs/figures/robust_overfitting.png")
    args = parser.parse_args()

    common = [
        "--dataset",
        "fashion-mnist",
        "--epsilon",
        str(args.epsilon),
        "--epochs",
        str(args.epochs),
        "--lr",
        str(args.lr),
        "--schedule",
        "piecewise",
        "--seed",
        str(args.seed),
        "--train-subset",
        str(args.train_subset),
        "--attack-steps",
        str(args.attack_steps),
        "--energy-subset",
        "500",
        "--val-size",
        str(args.val_size),
        "--augment" if args.augment else "--no-augment",
    ]
    setting = f"n{args.train_subset}" + ("" if args.augment else "-noaug")
    names = {
        label: f"{label.lower().replace('+', '-')}-{setting}-seed{args.seed}"
        for label in args.methods
    }
    grid = {names[label]: METHODS[label] + common for label in args.methods}
    runs = Path(args.runs)
    archive = archive_folder(args)
    histories = ensure_runs(runs, grid, args.jobs, train=not args.report_only, archive=archive)
    groups = {}
    print(
        "| method | best PGD-20 (val) | epoch | last PGD-20 (val) | gap | final dE(x) | "
        "first alarm |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, name in names.items():
        hist = histories[name]
        groups[label] = [(label, hist)]
        best = max(hist, key=lambda h: h["val_pgd_acc"])
        last = hist[-1]
        print(
            f"| {label} | {best['val_pgd_acc']:.3f} | {best['epoch']} | "
            f"{last['val_pgd_acc']:.3f} | {best['val_pgd_acc'] - last['val_pgd_acc']:.3f} | "
            f"{last['delta_energy']:+.3f} | {first_alarm(hist)} |"
        )
    plot_runs(
        groups,
        Path(args.figure),
        f"Robust overfitting, {args.train_subset} Fashion-MNIST images"
        + ("" if args.augment else " (no augmentation)")
        + f", eps={args.epsilon}",
    )


if __name__ == "__main__":
    main()
