"""Train, evaluate, fit priors for and install the embedded Fashion-MNIST presets.

Each preset goes through four resumable stages; a stage whose output exists is skipped, so the
script can be stopped and started again at will (training resumes from its last epoch):

1. ``python -m hubmodels train`` (the recipe below) into RUNS/NAME;
2. ``python -m hubmodels eval`` of RUNS/NAME/best on the full test set (AutoAttack on a stated
   prefix, it is slow on a CPU), written into the checkpoint's config and card;
3. ``python -m hubmodels fit-prior`` on the training split, stored in the weights file;
4. copy of the folder, its training plot and per-epoch log into hubmodels/presets/NAME.

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
RECIPES = {
    "fmnist-smallcnn-standard": ["--method", "standard", *COMMON, "--epochs", "6"],
    "fmnist-smallcnn-pgdat": ["--method", "pgd_at", *ROBUST],
    "fmnist-smallcnn-trades": ["--method", "trades", *ROBUST],
    "fmnist-smallcnn-weat": ["--method", "weat_adv", *ROBUST],
    "fmnist-smallcnn-der": ["--method", "pgd_at", "--der-lambda", "1", *ROBUST],
}


def hubmodels(*args: str) -> None:
    command = [sys.executable, "-m", "hubmodels", *args]
    print("running:", " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True)


def build(name: str, runs: Path, autoattack_images: int) -> None:
    run = runs / name
    ensure_run(runs, name, RECIPES[name])
    best = run / "best"
    metrics = json.loads((best / "config.json").read_text())["metrics"]
    if "pgd20_acc" not in metrics:
        hubmodels(
            "eval",
            "--model",
            str(best),
            "--num-images",
            "10000",
            "--pgd-steps",
            "20",
            "50",
            "--autoattack-images",
            str(autoattack_images),
            "--batch-size",
            "500",
        )
    if json.loads((best / "config.json").read_text()).get("prior") is None:
        hubmodels("fit-prior", "--model", str(best))
    target = PRESETS_DIR / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(best, target)
    for extra in ("training.png", "metrics.jsonl"):
        shutil.copy(run / extra, target / extra)
    print(f"installed {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(RECIPES), help="default: all")
    parser.add_argument("--runs", default="runs/presets")
    parser.add_argument("--autoattack-images", type=int, default=2000)
    args = parser.parse_args()
    for name in args.only or RECIPES:
        build(name, Path(args.runs), args.autoattack_images)


if __name__ == "__main__":
    main()
