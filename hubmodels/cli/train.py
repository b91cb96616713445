"""``python -m hubmodels train``: one ``--flag`` per ``TrainConfig`` field, then the trainer."""

from __future__ import annotations

import argparse
import dataclasses
import shlex

from hubmodels.training.config import TrainConfig

HELP = "adversarially train a RobustClassifier"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per TrainConfig field; booleans get ``--x/--no-x``. The help lists the
    registered datasets and backbones by name, so ``--help`` alone says what to type."""
    from hubmodels.classifiers.architectures import ARCHITECTURES
    from hubmodels.training.data import DATASETS

    names = {
        "datasets": ", ".join(sorted(DATASETS)),
        "architectures": ", ".join(sorted(ARCHITECTURES)),
    }
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = f.type if isinstance(f.type, str) else f.type.__name__
        text = f.metadata["help"].format(**names)
        if kind == "bool":
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=f.default, help=text
            )
            continue
        base = kind.split("|")[0].strip()
        convert = {"int": int, "float": float, "str": str}[base]
        parser.add_argument(flag, type=convert, default=f.default, help=text)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names})


def run(args: argparse.Namespace) -> None:
    from hubmodels.training.trainer import train

    if args.command is None:  # recorded in the card: how to reproduce, so without --resume
        argv = [a for a in args.argv if a not in ("--resume", "--no-resume")]
        args.command = "python -m hubmodels " + shlex.join(argv)
    best = train(config_from_args(args))
    print(f"best checkpoint: {best}")
