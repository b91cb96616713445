"""Run a grid of training runs that survives interruptions, and read their logs back.

Every run is ``python -m hubmodels train ... --output-dir RUNS/NAME --resume``: a finished run
(its ``last/`` folder exists) is skipped, a killed one continues from its last saved epoch. So an
experiment that does not fit in one sitting is simply started again.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path


def ensure_run(runs: Path, name: str, args: list[str]) -> list[dict]:
    """Train (or finish training) run ``name`` and return its per-epoch history."""
    out = runs / name
    if not (out / "last" / "config.json").is_file():
        command = [
            sys.executable,
            "-m",
            "hubmodels",
            "train",
            *args,
            "--output-dir",
            str(out),
            "--resume",
        ]
        print("running:", shlex.join(command[1:]), flush=True)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "train.log", "a") as log:
            subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    return history(out)


def history(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").open()]


def first_alarm(history: list[dict]) -> str:
    epochs = [h["epoch"] for h in history if h.get("alarm")]
    return str(epochs[0]) if epochs else "none"


def plot_runs(groups: dict[str, list[tuple[str, list[dict]]]], path: Path, title: str) -> None:
    """One panel per group: PGD validation error (left) and dE(x) (right) per run, alarms marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.6), squeeze=False)
    for ax, (group, runs) in zip(axes[0], groups.items(), strict=True):
        de_ax = ax.twinx()
        for i, (label, hist) in enumerate(runs):
            epochs = [h["epoch"] for h in hist]
            style = dict(lw=1.2, alpha=0.9, ls=["-", "--", ":"][i % 3])
            ax.plot(
                epochs,
                [1 - h["val_pgd_acc"] for h in hist],
                color="tab:blue",
                label=f"PGD error {label}",
                **style,
            )
            de_ax.plot(
                epochs,
                [h["delta_energy"] for h in hist],
                color="tab:green",
                label=f"dE(x) {label}",
                **style,
            )
            for h in hist:
                if h.get("alarm"):
                    ax.axvline(h["epoch"], color="tab:red", lw=0.8, alpha=0.5)
        ax.set_ylim(0, 1)
        ax.set_title(group, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("PGD-20 validation error", color="tab:blue")
        de_ax.set_ylabel("dE(x) on training images", color="tab:green")
        de_ax.axhline(0, color="grey", lw=0.5)
    fig.suptitle(title + "   (red lines: CO/RO alarm)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
