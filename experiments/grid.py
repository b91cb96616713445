"""Run a grid of training runs that survives interruptions, and read their logs back.

Every run is ``python -m hubmodels train ... --output-dir RUNS/NAME --resume``: a finished run
(its ``last/`` folder exists) is skipped, a killed one continues from its last saved epoch. So an
experiment that does not fit in one sitting is simply started again. ``ensure_runs`` trains
several at once: a small CNN leaves a GPU mostly idle, so four or more runs share one well.

Runs (weights, optimiser state) live in the ignored ``runs/`` folder and are lost with the
machine. With an ``archive`` folder (tracked in git) each finished run's per-epoch history is
copied there, and a run found in the archive is read from it and not trained again: a grid
larger than one session grows across sessions by committing the archive as runs finish.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def ensure_run(
    runs: Path,
    name: str,
    args: list[str],
    train: bool = True,
    archive: Path | None = None,
    threads: int | None = None,
) -> list[dict]:
    """Train (or finish training) run ``name`` and return its per-epoch history.

    ``train=False`` only reads the history as it stands (of a run still training, or one
    trained elsewhere and cut short), so partial results can be tabulated and plotted.
    ``archive``: read a finished run from ``archive/NAME.jsonl`` and copy new ones there.
    ``threads``: the run's CPU threads (torch's default takes every core, so runs side by side
    on a small CPU fight over them: on two cores, two 2-thread FGSM runs took 195 s an epoch of
    20,000 images, two 1-thread runs 41 s an epoch of 10,000, about 2.4 times the pace).
    """
    out = runs / name
    finished = (out / "last" / "config.json").is_file()
    archived = archive / f"{name}.jsonl" if archive is not None else None
    if archived is not None and archived.is_file() and not finished:
        return _read_history(archived)
    if train and not finished:
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
        env = os.environ.copy()
        if threads is not None:
            env |= {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        with open(out / "train.log", "a") as log:
            subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, env=env)
        finished = True
    if finished and archived is not None:
        archived.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "metrics.jsonl", archived)
    return history(out)


def ensure_runs(
    runs: Path,
    grid: dict[str, list[str]],
    jobs: int = 1,
    train: bool = True,
    archive: Path | None = None,
) -> dict[str, list[dict]]:
    """``ensure_run`` for every ``name -> args`` of ``grid``, ``jobs`` at a time, in grid order.

    Each run gets an equal share of the CPU cores (at least one thread), or the caller's
    ``OMP_NUM_THREADS`` when it sets one (grids started side by side).
    """
    threads = int(os.environ.get("OMP_NUM_THREADS") or 0) or max(1, (os.cpu_count() or 1) // jobs)
    # Threads are enough: each one only waits on its training subprocess.
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {
            name: pool.submit(ensure_run, runs, name, args, train, archive, threads)
            for name, args in grid.items()
        }
        return {name: future.result() for name, future in futures.items()}


def add_archive_option(parser) -> None:
    """``--archive``: where finished runs' histories are kept (see the module docstring)."""
    parser.add_argument(
        "--archive",
        help="where finished runs' histories are kept (in git); default experiments/results/"
        "<name of --runs>",
    )


def archive_folder(args) -> Path:
    """The archive of ``args.runs``: ``--archive`` or experiments/results/<name of --runs>."""
    return Path(args.archive or Path("experiments/results") / Path(args.runs).name)


def has_history(runs: Path, name: str, archive: Path | None = None) -> bool:
    """Whether run ``name`` has logged an epoch, in ``runs`` or in the archive."""
    in_archive = archive is not None and (archive / f"{name}.jsonl").is_file()
    return in_archive or (runs / name / "metrics.jsonl").is_file()


def drop_untrained(grid: dict, runs: Path, archive: Path | None = None) -> None:
    """For a report of runs as they stand: leave out (and name) those with no epoch logged."""
    for name in [n for n in grid if not has_history(runs, n, archive)]:
        print(f"not trained yet: {name}")
        del grid[name]


def checkpoint_test_accuracy(
    runs: Path, name: str, archive: Path | None, *, images: int, steps: int = 20
) -> dict | None:
    """Clean and PGD-``steps`` accuracy of run ``name``'s best and last checkpoints on the
    first ``images`` test images, at the run's own epsilon: {"best": {...}, "last": {...}}.

    The best checkpoint was picked on the validation split, so its validation accuracy carries
    the luck of the pick; the test split does not. The result is cached next to the archived
    history (``archive/NAME.test.json``, committed with it) and read from there when its
    settings match; a run neither finished here nor cached gives None.
    """
    cached = archive / f"{name}.test.json" if archive is not None else None
    settings = {"images": images, "pgd_steps": steps}
    if cached is not None and cached.is_file():
        result = json.loads(cached.read_text())
        if all(result.get(k) == v for k, v in settings.items()):
            return result
    folder = runs / name
    if not (folder / "last" / "config.json").is_file():
        return None
    import torch
    from torch.utils.data import DataLoader, Subset

    from hubmodels.classifiers import RobustClassifier
    from hubmodels.metrics.robust_accuracy import accuracy, pgd_attack
    from hubmodels.training.data import load_dataset

    result = dict(settings)
    # Both checkpoints come from one run: one dataset and one threat model, read once.
    config = json.loads((folder / "last" / "config.json").read_text())
    test = load_dataset(config["dataset"]).test
    loader = DataLoader(Subset(test, range(min(images, len(test)))), batch_size=250)
    threat = config["threat_model"]
    attack = pgd_attack(threat["epsilon"], steps, norm=threat.get("norm", "linf"))
    for which in ("best", "last"):
        model = RobustClassifier.from_pretrained(folder / which)
        torch.manual_seed(0)  # the attack's random start
        result[which] = {
            "clean": accuracy(model, loader),
            "pgd": accuracy(model, loader, attack),
        }
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(result, indent=1) + "\n")
    return result


def slug(label: str) -> str:
    """A run folder from a method label: "FGSM+DER[uniform,relative]" -> fgsm-der-uniform-relative
    (older labels keep their folders: "FGSM+DER3" -> fgsm-der3)."""
    for old, new in (("+", "-"), ("[", "-"), (",", "-"), ("]", "")):
        label = label.replace(old, new)
    return label.lower()


def history(out: Path) -> list[dict]:
    log = out / "metrics.jsonl"
    if not log.is_file():
        raise SystemExit(f"{out} has no metrics.jsonl yet: train it first (drop --report-only)")
    return _read_history(log)


def _read_history(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open()]


def first_alarm(history: list[dict]) -> str:
    epochs = [h["epoch"] for h in history if h.get("alarm")]
    return str(epochs[0]) if epochs else "none"


def plot_runs(groups: dict[str, list[tuple[str, list[dict]]]], path: Path, title: str) -> None:
    """One panel per group, up to three a row: PGD validation error (left axis) and dE(x) (right)
    per run, with a red line where each run's CO/RO alarm first fired."""
    if not groups:
        print(f"no runs to plot: {path} not written")
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 2 if len(groups) == 4 else min(3, len(groups))
    rows = -(-len(groups) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(groups) :]:
        ax.axis("off")
    for ax, (group, runs) in zip(axes.flat, groups.items(), strict=False):
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
            alarm = first_alarm(hist)
            if alarm != "none":  # later epochs usually repeat the same alarm
                ax.axvline(int(alarm), color="tab:red", lw=0.8, alpha=0.6, ls=style["ls"])
        ax.set_ylim(0, 1)
        ax.set_title(group, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("PGD-20 validation error", color="tab:blue")
        de_ax.set_ylabel("dE(x) on training images", color="tab:green")
        de_ax.axhline(0, color="grey", lw=0.5)
    # Wrapped so that a one-panel figure keeps its whole title (about 11 characters an inch).
    title = textwrap.fill(title + "   (red lines: CO/RO alarm)", width=int(11 * 4.4 * cols))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
