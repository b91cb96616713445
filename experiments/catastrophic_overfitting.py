"""Catastrophic overfitting (DER paper, docs/methods.md 3.2-3.4) on Fashion-MNIST.

Single-step adversarial training with plain FGSM collapses at a large enough epsilon: the PGD
accuracy falls to near zero within an epoch while the FGSM accuracy stays high. DER claims that
the delta energy dE(x) diverges at that moment and that penalising it prevents the collapse.
This script trains FGSM, FGSM + DER, RS-FGSM and N-FGSM for several seeds with the cyclic
schedule of fast AT, then plots dE(x) next to the PGD validation error (the DER figure) and
prints the table of final and best PGD-20 validation accuracy and the first alarm epoch.

    python experiments/catastrophic_overfitting.py --sweep 0.1 0.15 0.2 0.25 0.3  # find eps
    python experiments/catastrophic_overfitting.py --epsilon 0.15 --seeds 0 1 2 --der-lambdas 3 10

ε = 0.15 is where FGSM first collapses on Fashion-MNIST (docs/experiments.md). On a GPU add
``--jobs 12``: an H100 and an H200 trained its 18 runs at 4.5-12 s per epoch.
Interrupted? Run the same command again: finished runs are skipped, others resume.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from grid import ensure_runs, first_alarm, plot_runs

METHODS = {  # label -> trainer flags
    "FGSM": ["--method", "fgsm"],
    "FGSM+DER": ["--method", "fgsm", "--der-lambda", "1"],
    "RS-FGSM": ["--method", "rs_fgsm"],
    "N-FGSM": ["--method", "n_fgsm"],
}


def der_variants(lambdas: list[float]) -> dict[str, list[str]]:
    """FGSM+DER at other weights (docs/methods.md 3.3 proposes sweeping lambda over 0.1 ... 10)."""
    return {f"FGSM+DER{lam:g}": ["--method", "fgsm", "--der-lambda", str(lam)] for lam in lambdas}


def common(args, eps: float, seed: int) -> list[str]:
    return [
        "--dataset",
        "fashion-mnist",
        "--epsilon",
        str(eps),
        "--epochs",
        str(args.epochs),
        "--lr",
        str(args.lr),
        "--schedule",
        "cyclic",
        "--seed",
        str(seed),
        "--train-subset",
        str(args.train_subset),
        "--energy-subset",
        "500",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilon", type=float, default=0.15)
    parser.add_argument("--sweep", type=float, nargs="*", help="FGSM only, at these epsilons")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="sweep: use 0")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--train-subset", type=int, default=20000)
    parser.add_argument("--methods", nargs="*", choices=list(METHODS), default=list(METHODS))
    parser.add_argument(
        "--der-lambdas", type=float, nargs="*", default=[], help="also FGSM+DER at these lambdas"
    )
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once (GPU: 4+)")
    parser.add_argument(
        "--report-only", action="store_true", help="tabulate and plot the runs as they are"
    )
    parser.add_argument("--runs", default="runs/co")
    parser.add_argument("--figure", default="docs/figures/catastrophic_overfitting.png")
    args = parser.parse_args()
    runs = Path(args.runs)

    if args.sweep:
        sweep = {
            f"sweep-fgsm-eps{eps}-seed{seed}": (eps, seed)
            for eps in args.sweep
            for seed in args.seeds
        }
        histories = ensure_runs(
            runs,
            {n: METHODS["FGSM"] + common(args, eps, seed) for n, (eps, seed) in sweep.items()},
            args.jobs,
            train=not args.report_only,
        )
        groups = {}
        for name, (eps, seed) in sweep.items():
            hist = histories[name]
            groups.setdefault(f"FGSM eps={eps}", []).append((f"seed {seed}", hist))
            # The CO signature: PGD accuracy collapses while the FGSM (training) accuracy stays up.
            print(f"eps {eps} seed {seed}: epoch PGD-val / FGSM-train accuracy")
            print("  " + " ".join(f"{h['val_pgd_acc']:.2f}/{h['train_acc']:.2f}" for h in hist))
        plot_runs(groups, Path(args.figure).with_name("co_sweep.png"), "FGSM AT epsilon sweep")
        return

    methods = {label: METHODS[label] for label in args.methods} | der_variants(args.der_lambdas)
    grid = {
        f"{label.lower().replace('+', '-')}-eps{args.epsilon}-seed{seed}": (label, seed, flags)
        for label, flags in methods.items()
        for seed in args.seeds
    }
    histories = ensure_runs(
        runs,
        {n: flags + common(args, args.epsilon, seed) for n, (_, seed, flags) in grid.items()},
        args.jobs,
        train=not args.report_only,
    )
    groups = {}
    print(
        "| method | seed | final PGD-20 (val) | best PGD-20 (val) | final FGSM (train) |"
        " final dE(x) | first alarm (epoch) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, (label, seed, _) in grid.items():
        hist = histories[name]
        groups.setdefault(label, []).append((f"seed {seed}", hist))
        best = max(h["val_pgd_acc"] for h in hist)
        print(
            f"| {label} | {seed} | {hist[-1]['val_pgd_acc']:.3f} | {best:.3f} |"
            f" {hist[-1]['train_acc']:.3f} | {hist[-1]['delta_energy']:+.3f} |"
            f" {first_alarm(hist)} |"
        )
    plot_runs(groups, Path(args.figure), f"Single-step AT on Fashion-MNIST, eps={args.epsilon}")


if __name__ == "__main__":
    main()
