"""The package's layers: each part of ``hubmodels`` imports only itself and lower layers.

Checked on the source, lazy imports inside functions included, so a convenience import that
runs up the layers (a library module reaching for the command line or the trainer) fails here.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hubmodels"
# Lowest first. A part is a subpackage or a top-level module of hubmodels.
LAYERS = [
    {"registry", "cache"},  # names to things, for every lookup by name; the on-disk cache folder
    {"hub", "energy", "attacks", "images", "outputs"},  # checkpoints, E(x), attacks, I/O
    {"sampling", "explorer", "metrics"},  # libraries on a model they are handed
    {"classifiers"},  # RobustClassifier: the model, with its sampling and explorer methods
    {"inversion", "training"},  # CLIP^-1 (a classifier can be its encoder); the trainer
    {"presets_catalog", "cli", "__init__"},  # what users call
    {"__main__"},  # python -m hubmodels: hands over to cli
]
LAYER = {part: i for i, parts in enumerate(LAYERS) for part in parts}


def _part(path: Path) -> str:
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def _imported_parts(path: Path) -> set[str]:
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = node.module.split(".")
            if names[0] == "hubmodels":
                parts |= {names[1]} if len(names) > 1 else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            parts |= {a.name.split(".")[1] for a in node.names if a.name.startswith("hubmodels.")}
    return parts


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_part_has_a_layer():
    assert {_part(p) for p in SOURCES} == set(LAYER)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_its_own_part_and_lower_layers(path):
    part = _part(path)
    upward = sorted(
        other
        for other in _imported_parts(path) - {part}
        if LAYER.get(other, len(LAYERS)) >= LAYER[part]
    )
    assert not upward, f"{part} (layer {LAYER[part]}) imports {upward}, not below it"


ROOT = PACKAGE.parent
CALLERS = sorted([ROOT / "app.py", *ROOT.glob("bench/*.py"), *ROOT.glob("experiments/*.py")])


def _private_uses(path: Path) -> list[str]:
    """Private names (``_x``, not dunders) a script imports from hubmodels or reads off an
    object other than ``self``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hubmodels"):
            found += [a.name for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            base = node.value.id if isinstance(node.value, ast.Name) else None
            if not node.attr.startswith("__") and base != "self":
                found.append(f"{base}.{node.attr}")
    return found


@pytest.mark.parametrize("path", CALLERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_space_bench_and_experiments_use_only_public_names(path):
    assert not _private_uses(path)
