"""Train, evaluate, fit priors for and install the embedded Fashion-MNIST presets.

Each preset goes through five resumable stages; a stage whose output exists is skipped, so the
script can be stopped and started again at will (training resumes from its last epoch):

1. ``python -m hubmodels train`` (the recipe below) into RUNS/NAME;
2. ``python -m hubmodels eval`` of RUNS/NAME/best on the full test set, written into the
   checkpoint's config and card;
3. ``python -m hubmodels fit-prior`` on the training split, stored in the weights file;
4. ``python -m hubmodels fit-energy-reference`` on the test set (the energy explorer's E(x)
   histogram and OOD threshold), stored in the weights file;
5. copy of the folder, its training plot and per-epoch log into hubmodels/presets/NAME.

AutoAttack, far slower than PGD on a CPU, runs last over all presets, on a stated prefix of the
test set, and each preset is installed again with its number.

    python experiments/build_presets.py --only fmnist-smallcnn-weat fmnist-smallcnn-der
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from grid import ensure_run

PRESETS_DIR = Path(__file__).resolve().parents[1] / "hubmodels" / "presets"
COMMON = ["--dataset", "fashion-mnist", "--epsilon", "0.1", "--lr", "0.05", "--seed", "0"]
ROBUST = [*COMMON, "--attack-steps", "7", "--epochs", "8"]
DER = ["--der-lambda", "1", "--der-form", "joint"]  # the form our experiments support best
RECIPES = {
    "fmnist-smallcnn-standard": ["--method", "standard", *COMMON, "--epochs", "6"],
    "fmnist-smallcnn-pgdat": ["--method", "pgd_at", *ROBUST],
    "fmnist-smallcnn-trades": ["--method", "trades", *ROBUST],
    "fmnist-smallcnn-weat": ["--method", "weat_adv", *ROBUST],
    "fmnist-smallcnn-der": ["--method", "pgd_at", *DER, *ROBUST],
}


def hubmodels(*args: str) -> None:
    command = [sys.executable, "-m", "hubmodels", *args]
    print("running:", " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True)


def evaluate(best: Path, *attack_args: str) -> None:
    hubmodels(
        "eval", "--model", str(best), "--num-images", "10000", "--batch-size", "500", *attack_args
    )


def install(name: str, run: Path) -> None:
    target = PRESETS_DIR / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(run / "best", target)
    for extra in ("training.png", "metrics.jsonl"):
        shutil.copy(run / extra, target / extra)
    print(f"installed {target}", flush=True)


def build(name: str, runs: Path) -> None:
    """Stages 1-5 with PGD only, so a preset ships before its (slow) AutoAttack number exists."""
    run = runs / name
    ensure_run(runs, name, RECIPES[name])
    best = run / "best"
    if "pgd20_acc" not in recorded_config(best)["metrics"]:
        evaluate(best, "--pgd-steps", "20", "--no-autoattack")
    if recorded_config(best).get("prior") is None:  # re-read: eval rewrote the config
        hubmodels("fit-prior", "--model", str(best))
    if recorded_config(best).get("energy_reference") is None:
        hubmodels("fit-energy-reference", "--model", str(best))
    install(name, run)


def add_autoattack(name: str, runs: Path, autoattack_images: int) -> None:
    """AutoAttack on the first ``autoattack_images`` test images, merged into the preset."""
    run = runs / name
    if "autoattack_acc" not in recorded_config(run / "best")["metrics"]:
        evaluate(run / "best", "--pgd-steps", "--autoattack-images", str(autoattack_images))
    install(name, run)


def recorded_config(checkpoint: Path) -> dict:
    return json.loads((checkpoint / "config.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(RECIPES), help="default: all")
    parser.add_argument("--runs", default="runs/presets")
    parser.add_argument("--autoattack-images", type=int, default=2000)
    args = parser.parse_args()
    names = args.only or list(RECIPES)
    for name in names:
        build(name, Path(args.runs))
    for name in names:
        add_autoattack(name, Path(args.runs), args.autoattack_images)


if __name__ == "__main__":
    main()
