"""Every training and CLIP^-1 command that the docs print is one the CLI accepts.

A recipe with a misspelt flag or an impossible setting would only fail on a user's GPU after the
download; here it fails in a second, without training anything.
"""

import re
import shlex
from pathlib import Path

import pytest

from hubmodels.__main__ import build_parser
from hubmodels.cli.train import config_from_args

ROOT = Path(__file__).resolve().parents[1]
TRAIN = re.compile(r"(?:accelerate launch|python) -m hubmodels train")


def documented_train_commands(doc: Path) -> list[str]:
    """The ``-m hubmodels train`` commands of the doc's bash blocks, continuations joined."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", doc.read_text(), flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        commands += [line.split("#")[0] for line in joined.splitlines() if TRAIN.search(line)]
    return commands


COMMANDS = [
    (doc, command)
    for doc in ("checkpoints.md", "README.md")
    for command in documented_train_commands(ROOT / doc)
]


def test_the_docs_hold_the_paper_recipes():
    datasets = {re.search(r"--dataset (\S+)", c).group(1) for _, c in COMMANDS if "--dataset" in c}
    assert {"cifar10", "cifar100", "svhn", "tiny-imagenet", "fashion-mnist"} <= datasets


@pytest.mark.parametrize(("doc", "command"), COMMANDS, ids=lambda v: v[:60])
def test_documented_training_command_builds_a_config(doc, command):
    argv = shlex.split(TRAIN.split(command, maxsplit=1)[1])
    args = build_parser().parse_args(["train", *argv])
    config = config_from_args(args)  # validates schedule, method, epsilon, ...
    assert config.epochs >= 1, f"{doc}: {command}"


INVERT = re.compile(r"(?:accelerate launch|python) -m hubmodels (invert|build-bank) ")


def documented_inversion_commands() -> list[str]:
    commands = []
    for doc in (ROOT / "README.md", ROOT / "checkpoints.md", ROOT / "docs" / "inversion.md"):
        for block in re.findall(r"```bash\n(.*?)```", doc.read_text(), flags=re.S):
            joined = re.sub(r"\\\n\s*", " ", block)
            commands += [line.split("#")[0] for line in joined.splitlines() if INVERT.search(line)]
    return [c for c in commands if "..." not in c]


@pytest.mark.parametrize("command", documented_inversion_commands(), ids=lambda v: v[:60])
def test_documented_inversion_command_parses(command):
    argv = shlex.split(command.split(" -m hubmodels ", maxsplit=1)[1])
    args = build_parser().parse_args(argv)
    assert args.verb in ("invert", "build-bank")


def test_the_readme_shows_every_inversion_task():
    tasks = {c.split()[4] for c in documented_inversion_commands() if " invert " in c}
    assert tasks == {"text", "reconstruct", "style"}
