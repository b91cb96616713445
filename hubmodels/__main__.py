"""Command line: ``python -m hubmodels VERB``.

Verbs: train, eval, fit-prior, fit-energy-reference, sample, invert, build-bank, push.

Every command also runs under ``accelerate launch -m hubmodels ...``. Errors that are the
user's to fix (a missing dataset, a checkpoint that does not load, a refused push) end with
one clear line and exit code 2, not a traceback.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from hubmodels.hub import CheckpointError, HubPushError

SUBSET_CHECK = 500  # test images whose clean accuracy every evaluated checkpoint records


def _train(args: argparse.Namespace) -> None:
    from hubmodels.training.config import config_from_args
    from hubmodels.training.trainer import train

    if args.command is None:  # recorded in the card: how to reproduce, so without --resume
        argv = [a for a in args.argv if a not in ("--resume", "--no-resume")]
        args.command = "python -m hubmodels " + shlex.join(argv)
    best = train(config_from_args(args))
    print(f"best checkpoint: {best}")


def _eval(args: argparse.Namespace) -> None:
    import torch
    from torch.utils.data import DataLoader

    from hubmodels.classifiers import RobustClassifier
    from hubmodels.metrics.robust_accuracy import accuracy, evaluate_robustness
    from hubmodels.training.data import load_dataset

    model = RobustClassifier.from_pretrained(args.model)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    # Channels-last conv weights make an attack step about 20 % faster on a CPU (as in training).
    model.to(device, memory_format=torch.channels_last)
    dataset = args.dataset or model.config["dataset"]
    if not dataset:
        raise SystemExit("the checkpoint names no dataset: pass --dataset")
    splits = load_dataset(dataset, root=args.data_root, download=args.download)
    threat = model.config["threat_model"]
    eps = args.epsilon if args.epsilon is not None else threat.get("epsilon")
    norm = args.norm or threat.get("norm", "linf")
    if eps is None:
        raise SystemExit("the checkpoint has no threat model: pass --epsilon (and --norm)")
    num_images = min(args.num_images, len(splits.test))
    loader = DataLoader(splits.test, batch_size=args.batch_size, shuffle=False)
    results = evaluate_robustness(
        model,
        loader,
        eps=eps,
        norm=norm,
        num_images=num_images,
        pgd_steps=tuple(args.pgd_steps),
        restarts=args.restarts,
        autoattack_eval=not args.no_autoattack,
        autoattack_images=args.autoattack_images,
        num_classes=model.config["num_classes"],
    )
    # The clean accuracy on a small fixed prefix of the test set, recorded so the test suite
    # can recheck in a second that the shipped weights are the ones that were measured.
    check = min(SUBSET_CHECK, num_images)
    results[f"clean_acc_first{check}"] = round(accuracy(model, loader, limit=check), 4)
    model.config["metrics"] = {
        **model.config["metrics"],
        "test": f"{dataset} test set, first {num_images} images",
        "threat_model": f"{norm} eps={eps:.4g}",
        "pgd_restarts": args.restarts,
        **results,
    }
    target = args.save_to or (args.model if Path(args.model).is_dir() else None)
    if target is None:
        print("not saved: pass --save-to DIR to write the metrics into a checkpoint folder")
    else:
        model.cpu().save_pretrained(target)
        print(f"metrics written to {Path(target) / 'config.json'} and its README.md")


def _fit_energy_reference(args: argparse.Namespace) -> None:
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


def _push(args: argparse.Namespace) -> None:
    from hubmodels.classifiers import RobustClassifier
    from hubmodels.hub import push_folder

    RobustClassifier.from_pretrained(args.folder)  # refuse to publish what would not load
    url = push_folder(args.folder, args.repo_id, token=args.token, private=args.private)
    print(f"pushed {args.folder} to {args.repo_id}: {url}")


class _ShowDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """Append "(default: X)" to each flag's help, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, argparse.SUPPRESS) or action.required:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose ``--help`` shows the defaults; sub-parsers inherit it."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _ShowDefaults)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    from hubmodels.training.config import add_train_arguments

    parser = _Parser(
        prog="python -m hubmodels",
        description="Train, evaluate, sample from and push robust classifiers; invert CLIP. "
        "Every verb also runs under `accelerate launch -m hubmodels ...`.",
    )
    commands = parser.add_subparsers(dest="verb", required=True)  # verbs are _Parsers too

    train = commands.add_parser("train", help="adversarially train a RobustClassifier")
    add_train_arguments(train)
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("eval", help="clean / PGD / AutoAttack accuracy")
    evaluate.add_argument("--model", required=True, help="preset name, folder or hub id")
    evaluate.add_argument("--dataset", help="default: the checkpoint's dataset")
    evaluate.add_argument("--data-root", help="folder holding the data")
    evaluate.add_argument("--download", action="store_true", help="let torchvision download")
    evaluate.add_argument("--num-images", type=int, default=10000, help="test images to use")
    evaluate.add_argument(
        "--pgd-steps",
        type=int,
        nargs="*",
        default=[20, 50],
        help="PGD step counts (none: skip PGD)",
    )
    evaluate.add_argument("--restarts", type=int, default=1, help="PGD random restarts")
    evaluate.add_argument("--no-autoattack", action="store_true", help="skip AutoAttack")
    evaluate.add_argument(
        "--autoattack-images", type=int, help="run AutoAttack on only the first N (it is slow)"
    )
    evaluate.add_argument("--epsilon", type=float, help="default: the checkpoint's threat model")
    evaluate.add_argument("--norm", choices=["linf", "l2"], help="default: the checkpoint's")
    evaluate.add_argument("--batch-size", type=int, default=500, help="images per forward pass")
    evaluate.add_argument("--device", help="default: cuda if available, else cpu")
    evaluate.add_argument("--save-to", help="folder to write the checkpoint with its metrics")
    evaluate.set_defaults(run=_eval)

    from hubmodels.sampling import cli as sampling_cli

    fit = commands.add_parser("fit-prior", help="fit and store the sampling priors")
    sampling_cli.add_fit_prior_arguments(fit)
    fit.set_defaults(run=sampling_cli.run_fit_prior)

    reference = commands.add_parser(
        "fit-energy-reference",
        help="store real test images' E(x) histogram and OOD threshold (the energy explorer)",
    )
    reference.add_argument("--model", required=True, help="preset name, folder or hub id")
    reference.add_argument("--data", help="dataset of the registry (default: the model's)")
    reference.add_argument("--data-root", help="folder holding the data")
    reference.add_argument("--num-images", type=int, default=10000, help="test images used")
    reference.add_argument("--bins", type=int, default=60, help="histogram bins")
    reference.add_argument("--tpr", type=float, default=0.95, help="in-distribution share kept")
    reference.add_argument("--out", help="folder to save to (default: --model when a folder)")
    reference.set_defaults(run=_fit_energy_reference)

    sample = commands.add_parser("sample", help="class-conditional samples (PNGs or .npz)")
    sampling_cli.add_sample_arguments(sample)
    sample.set_defaults(run=sampling_cli.run_sample)

    from hubmodels.inversion import cli as inversion_cli

    invert = commands.add_parser("invert", help="CLIP^-1: text-to-image, reconstruct, style")
    inversion_cli.add_invert_arguments(invert)
    invert.set_defaults(run=inversion_cli.run_invert)

    bank = commands.add_parser("build-bank", help="fit AWP anchors for a CLIP^-1 bank")
    inversion_cli.add_build_bank_arguments(bank)
    bank.set_defaults(run=inversion_cli.run_build_bank)

    push = commands.add_parser("push", help="upload a save_pretrained folder to the Hub")
    push.add_argument("folder")
    push.add_argument("repo_id", help="org/name")
    push.add_argument("--token", help="default: the cached login or HF_TOKEN")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.set_defaults(run=_push)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args.run(args)
    except (CheckpointError, HubPushError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
