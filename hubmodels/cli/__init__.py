"""Command line: ``python -m hubmodels VERB``, one module per verb.

Verbs: train, eval, fit-prior, fit-energy-reference, sample, invert, build-bank, push. Each verb's
module has ``HELP``, ``add_arguments(parser)`` and ``run(args)``; a new verb is a module and a line
in ``COMMANDS``. This package is the top layer: it may import anything in ``hubmodels``, and
nothing in ``hubmodels`` imports it.

Every command also runs under ``accelerate launch -m hubmodels ...``. Errors that are the
user's to fix (a missing dataset, a checkpoint that does not load, a refused push) end with
one clear line and exit code 2, not a traceback.
"""

from __future__ import annotations

import argparse
import sys

from hubmodels.cli import (
    build_bank,
    evaluate,
    fit_energy_reference,
    fit_prior,
    invert,
    push,
    sample,
    train,
)
from hubmodels.hub import CheckpointError, HubPushError

COMMANDS = {
    "train": train,
    "eval": evaluate,
    "fit-prior": fit_prior,
    "fit-energy-reference": fit_energy_reference,
    "sample": sample,
    "invert": invert,
    "build-bank": build_bank,
    "push": push,
}


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
    parser = _Parser(
        prog="python -m hubmodels",
        description="Train, evaluate, sample from and push robust classifiers; invert CLIP. "
        "Every verb also runs under `accelerate launch -m hubmodels ...`.",
    )
    commands = parser.add_subparsers(dest="verb", required=True)  # verbs are _Parsers too
    for verb, module in COMMANDS.items():
        command = commands.add_parser(verb, help=module.HELP)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
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
