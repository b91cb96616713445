"""Catastrophic overfitting (DER paper, docs/methods.md 3.2-3.4) on Fashion-MNIST.

Single-step adversarial training with plain FGSM collapses at a large enough epsilon: the PGD
accuracy falls to near zero within an epoch while the FGSM accuracy stays high. DER claims that
the delta energy dE(x) diverges at that moment and that penalising it prevents the collapse.
This script trains FGSM, FGSM + DER, RS-FGSM and N-FGSM for several seeds with the cyclic
schedule of fast AT, then plots dE(x) next to the PGD validation error (the DER figure) and
prints the table of final and best PGD-20 validation accuracy and the first alarm epoch.

    python experiments/catastrophic_overfitting.py --sweep 0.1 0.15 0.2 0.25 0.3  # find eps
    python experiments/catastrophic_overfitting.py --epsilon 0.15 --seeds 0 1 2 --der-lambdas 3 10
    python experiments/catastrophic_overfitting.py --epsilon 0.15 --der-grid --attack-bn train

``--der-grid`` adds FGSM+DER for every point where the gap is measured (adversarial, uniform,
pgd2) x every form (squared, joint, relative) at lambda 1 (``--der-grid pgd2,joint``: one of
them; ``--der-base RS-FGSM N-FGSM``: DER on those instead of FGSM); ``--attack-bn train``
runs every single-step method with BatchNorm on batch statistics during its attack, as fast-AT
code does.
The table gives the collapse epoch (the first whose PGD-20 validation accuracy falls below a
third of the best before it), the logit scale at the end (the natural logits' std over classes),
the first epoch of the trainer's delta-energy alarm and whether it came before the collapse.

ε = 0.15 is where FGSM first collapses on Fashion-MNIST (docs/experiments.md). On a GPU add
``--jobs 12``: an H100 and an H200 trained its 18 runs at 4.5-12 s per epoch. The CPU screen
(half the images, half the validation set; 41 s an epoch for FGSM, 60-100 s for FGSM+DER, two
runs at once on two cores):

    python experiments/catastrophic_overfitting.py --epsilon 0.15 --seeds 0 --methods FGSM \
        --der-grid --train-subset 10000 --val-size 500 --jobs 2 --runs runs/co-cpu \
        --figure docs/figures/co_der_screen.png

Interrupted? Run the same command again: finished runs are skipped, others resume, and runs
archived in experiments/results/<name of --runs>/ (committed) are read from there.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from grid import add_archive_option, archive_folder, drop_untrained, ensure_runs, plot_runs
from grid import slug as _slug

METHODS = {  # label -> trainer flags
    "FGSM": ["--method", "fgsm"],
    # DER's first form here, the one its archived runs used (the trainer's default is now joint).
    "FGSM+DER": ["--method", "fgsm", "--der-lambda", "1", "--der-form", "squared"],
    "RS-FGSM": ["--method", "rs_fgsm"],
    "N-FGSM": ["--method", "n_fgsm"],
    # The cost-matched baseline of DER at the pgd2 point: train on that point itself (two steps
    # of eps/2 from a uniform start).
    "PGD-2": ["--method", "pgd_at", "--attack-steps", "2", "--alpha", "{eps/2}"],
}


def method_flags(flags: list[str], eps: float) -> list[str]:
    """A method's trainer flags at this epsilon (fills in "{eps/2}")."""
    return [str(eps / 2) if flag == "{eps/2}" else flag for flag in flags]


def der_variants(lambdas: list[float]) -> dict[str, list[str]]:
    """FGSM+DER at other weights (docs/methods.md 3.3 proposes sweeping lambda over 0.1 ... 10)."""
    return {
        f"FGSM+DER{lam:g}": ["--method", "fgsm", "--der-lambda", str(lam), "--der-form", "squared"]
        for lam in lambdas
    }


DER_POINTS = ("adversarial", "uniform", "pgd2")
DER_FORMS = ("squared", "joint", "relative")


SINGLE_STEP = ("FGSM", "RS-FGSM", "N-FGSM")  # the bases DER can be added to here


def der_grid(
    only: list[str] | None = None, bases: Sequence[str] = ("FGSM",)
) -> dict[str, list[str]]:
    """BASE+DER at lambda 1 for every base x measuring point x form (the DER variants of the
    trainer), or for the ``only`` ones, given as "point,form"."""
    for variant in only or []:
        point, _, form = variant.partition(",")
        if point not in DER_POINTS or form not in DER_FORMS:
            raise SystemExit(
                f"unknown DER variant {variant!r}: POINT,FORM from {DER_POINTS} x {DER_FORMS}"
            )
    for base in bases:
        if base not in SINGLE_STEP:
            raise SystemExit(f"DER base {base!r} is not one of {SINGLE_STEP}")
    return {
        f"{base}+DER[{point},{form}]": METHODS[base]
        + ["--der-lambda", "1", "--der-at", point, "--der-form", form]
        for base in bases
        for point in DER_POINTS
        for form in DER_FORMS
        if not only or f"{point},{form}" in only
    }


def collapse_epoch(history: list[dict]) -> int | None:
    """The first epoch whose PGD-20 validation accuracy is below a third of the best before it."""
    best = 0.0
    for h in history:
        if best > 0 and h["val_pgd_acc"] < best / 3:
            return h["epoch"]
        best = max(best, h["val_pgd_acc"])
    return None


def first_delta_energy_alarm(history: list[dict]) -> int | None:
    """The first epoch whose alarm names the delta energy (the PGD-collapse alarm is not a
    warning: it fires with the collapse it reports)."""
    for h in history:
        if "delta energy" in (h.get("alarm") or ""):
            return h["epoch"]
    return None


def warning(alarm: int | None, collapse: int | None) -> str:
    """How the dE alarm did: "N epochs early", "with the collapse", "late", "false alarm" (fired,
    no collapse followed) or "missed" (a collapse without it)."""
    if collapse is None:
        return "false alarm" if alarm is not None else "-"
    if alarm is None:
        return "missed"
    if alarm < collapse:
        return f"{collapse - alarm} epoch{'s' if collapse - alarm > 1 else ''} early"
    return "with the collapse" if alarm == collapse else "late"


def common(args, eps: float, seed: int) -> list[str]:
    bn = ["--attack-bn", args.attack_bn] if args.attack_bn != "eval" else []
    return bn + [
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
        "--val-size",
        str(args.val_size),
        "--energy-subset",
        "500",
        "--no-fit-prior",  # these runs are read for robustness, never sampled from
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilon", type=float, default=0.15)
    parser.add_argument(
        "--sweep", type=float, nargs="*", help="--methods (default FGSM) at these epsilons"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="sweep: use 0")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--train-subset", type=int, default=20000)
    parser.add_argument("--val-size", type=int, default=1000, help="PGD-20 validation images")
    parser.add_argument(
        "--methods", nargs="*", choices=list(METHODS), help="default: all (a sweep: FGSM)"
    )
    parser.add_argument(
        "--der-lambdas", type=float, nargs="*", default=[], help="also FGSM+DER at these lambdas"
    )
    parser.add_argument(
        "--der-grid",
        nargs="*",
        metavar="POINT,FORM",
        help="FGSM+DER at every point x form, or at the ones named (e.g. pgd2,joint)",
    )
    parser.add_argument(
        "--der-base",
        nargs="+",
        choices=SINGLE_STEP,
        default=["FGSM"],
        help="the single-step methods --der-grid adds DER to",
    )
    parser.add_argument(
        "--attack-bn", choices=["eval", "train"], default="eval", help="BatchNorm in the attack"
    )
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once (GPU: 4+)")
    parser.add_argument(
        "--report-only", action="store_true", help="tabulate and plot the runs as they are"
    )
    parser.add_argument("--runs", default="runs/co")
    add_archive_option(parser)
    parser.add_argument("--figure", default="docs/figures/catastrophic_overfitting.png")
    parser.add_argument("--sweep-figure", default="docs/figures/co_sweep.png")
    args = parser.parse_args()
    runs = Path(args.runs)
    archive = archive_folder(args)

    if args.sweep:
        labels = args.methods or ["FGSM"]
        sweep = {
            f"sweep-{_slug(label)}-eps{eps}-seed{seed}": (label, eps, seed)
            for label in labels
            for eps in args.sweep
            for seed in args.seeds
        }
        if args.report_only:
            drop_untrained(sweep, runs, archive)
        histories = ensure_runs(
            runs,
            {
                n: method_flags(METHODS[m], eps) + common(args, eps, seed)
                for n, (m, eps, seed) in sweep.items()
            },
            args.jobs,
            train=not args.report_only,
            archive=archive,
        )
        groups = {}
        for name, (label, eps, seed) in sweep.items():
            hist = histories[name]
            groups.setdefault(f"{label} eps={eps}", []).append((f"seed {seed}", hist))
            # The CO signature: PGD accuracy collapses while the training-attack accuracy stays up.
            print(f"{label} eps {eps} seed {seed}: epoch PGD-val / training-attack accuracy")
            print("  " + " ".join(f"{h['val_pgd_acc']:.2f}/{h['train_acc']:.2f}" for h in hist))
        plot_runs(groups, Path(args.sweep_figure), f"{', '.join(labels)}: epsilon sweep")
        return

    labels = METHODS if args.methods is None else args.methods  # a bare --methods: none
    methods = {label: METHODS[label] for label in labels}
    methods |= der_variants(args.der_lambdas)
    if args.der_grid is not None:
        methods |= der_grid(args.der_grid, args.der_base)
    suffix = "-bntrain" if args.attack_bn == "train" else ""
    grid = {
        f"{_slug(label)}-eps{args.epsilon}{suffix}-seed{seed}": (label, seed, flags)
        for label, flags in methods.items()
        for seed in args.seeds
    }
    if args.report_only:  # tabulate what has been trained so far
        drop_untrained(grid, runs, archive)
    histories = ensure_runs(
        runs,
        {
            n: method_flags(flags, args.epsilon) + common(args, args.epsilon, seed)
            for n, (_, seed, flags) in grid.items()
        },
        args.jobs,
        train=not args.report_only,
        archive=archive,
    )
    groups = {}
    print(
        "| method | seed | final PGD-20 (val) | best PGD-20 (val) | final FGSM (train) |"
        " final dE(x) | logit scale | collapse (epoch) | first dE alarm (epoch) | dE warning |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, (label, seed, _) in grid.items():
        hist = histories[name]
        if len(hist) < args.epochs:
            label = f"{label} ({len(hist)} of {args.epochs} epochs)"
        groups.setdefault(label, []).append((f"seed {seed}", hist))
        best = max(h["val_pgd_acc"] for h in hist)
        collapse, alarm = collapse_epoch(hist), first_delta_energy_alarm(hist)
        print(
            f"| {label} | {seed} | {hist[-1]['val_pgd_acc']:.3f} | {best:.3f} |"
            f" {hist[-1]['train_acc']:.3f} | {hist[-1]['delta_energy']:+.3f} |"
            f" {hist[-1].get('logit_scale', float('nan')):.2f} | {collapse or 'none'} |"
            f" {alarm or 'none'} | {warning(alarm, collapse)} |"
        )
    plot_runs(groups, Path(args.figure), f"Single-step AT on Fashion-MNIST, eps={args.epsilon}")


if __name__ == "__main__":
    main()
