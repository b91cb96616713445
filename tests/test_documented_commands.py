"""Every training command that checkpoints.md and README.md print is one the CLI accepts.

A recipe with a misspelt flag or an impossible setting would only fail on a user's GPU after the
download; here it fails in a second, without training anything.
"""

import re
import shlex
from pathlib import Path

import pytest

from hubmodels.__main__ import build_parser
from hubmodels.training.config import config_from_args

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
