"""What the embedded presets are, read from their files alone: the Space's Models tab.

Every function here reads ``config.json``, ``README.md`` or ``training.png`` from a preset folder
and never builds a model, so listing the catalog costs a few small file reads (presets are a
registry of name -> source, config, dataset, threat model, measured numbers).

Which numbers a row shows, in order of preference:

1. test-set accuracies written by ``python -m hubmodels eval`` (``clean_acc``, ``pgd20_acc``,
   ``autoattack_acc``), each one that is missing saying "not measured";
2. otherwise the validation accuracies the trainer saved with the checkpoint it selected
   (``val_clean_acc``, ``val_pgd_acc``: PGD with the trainer's ``val_attack_steps``, 20 by
   default), labelled as validation numbers so nobody mistakes them for test results;
3. otherwise "not measured" everywhere.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hubmodels import hub
from hubmodels.hub import CARD_NAME, CONFIG_NAME, CheckpointError

PLOT_NAME = "training.png"
NOT_MEASURED = "not measured"
COLUMNS = [
    "name",
    "architecture",
    "dataset",
    "method",
    "threat model",
    "clean acc",
    "PGD-20 acc",
    "AutoAttack acc",
    "measured on",
]
TEST_KEYS = ("clean_acc", "pgd20_acc", "autoattack_acc")
VAL_KEYS = ("val_clean_acc", "val_pgd_acc", None)  # the trainer runs no AutoAttack

# A model card starts with a YAML block between two "---" lines; the Space shows only the body.
_FRONT_MATTER = re.compile(r"\A\ufeff?\s*---[ \t]*\r?\n.*?\r?\n---[ \t]*(\r?\n|\Z)", re.DOTALL)


def installed_presets() -> list[str]:
    """Names of the registered presets whose files are present (the ones the Space can show)."""
    return hub.available_presets()


def missing_presets() -> list[str]:
    """Registered presets whose folders are absent from this installation."""
    return sorted(set(hub.PRESETS) - set(installed_presets()))


def preset_folder(name: str) -> Path:
    """The folder of an installed preset; a ``CheckpointError`` naming the choices otherwise."""
    if name not in installed_presets():
        known = ", ".join(installed_presets()) or "none installed"
        state = "is registered but its files are missing" if name in hub.PRESETS else "is unknown"
        raise CheckpointError(f"preset {name!r} {state}; installed presets: {known}")
    return hub.PRESETS[name].path


def preset_config(name: str) -> dict[str, Any]:
    """The parsed ``config.json`` of an installed preset."""
    return hub.read_config(preset_folder(name) / CONFIG_NAME)


def class_names(name: str) -> list[str]:
    """The class names an installed preset was trained on (for pickers; no model is built)."""
    config = preset_config(name)
    names = config.get("class_names")
    return list(names) if names else [str(i) for i in range(int(config.get("num_classes", 0)))]


# ---------------------------------------------------------------------------- the table
def threat_model_text(threat: dict[str, Any] | None) -> str:
    """``{"norm": "linf", "epsilon": 0.1}`` -> "linf 0.1"; 8/255 reads "linf 0.03137 (8/255)"."""
    eps = (threat or {}).get("epsilon")
    if not isinstance(eps, (int, float)):
        return "none"
    text = f"{threat.get('norm', '?')} {eps:.4g}"
    steps = eps * 255
    # Papers quote CIFAR budgets in 1/255 steps; say so when that is what the decimal hides.
    if len(f"{eps:g}") > 4 and abs(steps - round(steps)) < 1e-3 and round(steps) > 0:
        text += f" ({round(steps)}/255)"
    return text


def _accuracy(metrics: dict[str, Any], key: str | None) -> str:
    value = metrics.get(key) if key else None
    return f"{value:.2%}" if isinstance(value, (int, float)) else NOT_MEASURED


def accuracy_cells(metrics: dict[str, Any] | None) -> list[str]:
    """[clean, PGD-20, AutoAttack, measured on] from a config's ``metrics`` dict."""
    metrics = metrics or {}
    if any(isinstance(metrics.get(k), (int, float)) for k in TEST_KEYS):
        source = str(metrics.get("test") or "test set")
        return [*(_accuracy(metrics, k) for k in TEST_KEYS), source]
    if any(isinstance(metrics.get(k), (int, float)) for k in VAL_KEYS if k):
        source = str(metrics.get("split") or "validation split")
        if "epoch" in metrics:
            source += f", epoch {metrics['epoch']}"
        return [*(_accuracy(metrics, k) for k in VAL_KEYS), source]
    return [NOT_MEASURED] * 3 + ["—"]


def preset_row(name: str) -> list[str]:
    """One table row (see ``COLUMNS``) for an installed preset; a broken one says why."""
    try:
        config = preset_config(name)
    except CheckpointError as err:  # one broken preset must not take the Space down
        return [name, *["?"] * 4, *[NOT_MEASURED] * 3, f"unreadable: {err}"]
    training = config.get("training") or {}
    return [
        name,
        str(config.get("architecture", "?")),
        str(config.get("dataset") or "unspecified"),
        str(training.get("method", "unspecified")),
        threat_model_text(config.get("threat_model")),
        *accuracy_cells(config.get("metrics")),
    ]


def preset_rows() -> list[list[str]]:
    """A row per installed preset, sorted by name."""
    return [preset_row(name) for name in installed_presets()]


# ---------------------------------------------------------------------------- card and plot
def strip_front_matter(text: str) -> str:
    """The Markdown body of a model card, without its leading YAML metadata block."""
    return _FRONT_MATTER.sub("", text, count=1).strip()


def model_card_markdown(name: str) -> str:
    """The model card of an installed preset as Markdown, YAML front matter removed.

    Falls back to a card rendered from ``config.json`` when the folder has no README.md, so a
    preset is never shown without its recipe and numbers.
    """
    from hubmodels.classifiers.model_card import SOURCE_PLACEHOLDER, render_model_card

    card = preset_folder(name) / CARD_NAME
    if card.is_file():
        text = card.read_text(encoding="utf-8")
    else:
        text = str(render_model_card(preset_config(name)))
    # A preset loads by its name: show the snippet that works as written.
    return strip_front_matter(text).replace(SOURCE_PLACEHOLDER, name)


def training_plot_path(name: str) -> Path | None:
    """The delta-energy training plot of an installed preset, or None when it has none."""
    path = preset_folder(name) / PLOT_NAME
    return path if path.is_file() else None
