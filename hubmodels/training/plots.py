"""The training plot: dE(x) on training data next to PGD validation error, per epoch.

Mirrors the DER paper's figure (docs/methods.md 3.1: "dE(x) computed on the training set (right
axis) and PGD error (left axis)"), with alarms marked, so catastrophic and robust overfitting
are visible at a glance.
"""

from __future__ import annotations

from pathlib import Path


def plot_history(history: list[dict], path: str | Path, title: str = "") -> Path:
    """Draw ``history`` (the metrics.jsonl records) to a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window from a training run
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, err_ax = plt.subplots(figsize=(7, 4), dpi=100)
    err_ax.plot(
        epochs,
        [1 - h["val_pgd_acc"] for h in history],
        color="tab:blue",
        marker="o",
        ms=3,
        label="PGD error (validation)",
    )
    err_ax.plot(
        epochs,
        [1 - h["val_clean_acc"] for h in history],
        color="tab:blue",
        ls="--",
        alpha=0.6,
        label="clean error (validation)",
    )
    err_ax.set_xlabel("epoch")
    err_ax.set_ylabel("error", color="tab:blue")
    err_ax.set_ylim(0, 1)
    de_ax = err_ax.twinx()
    de_ax.plot(
        epochs,
        [h["delta_energy"] for h in history],
        color="tab:green",
        marker="s",
        ms=3,
        label="dE(x) = E(x) - E(x*) (train)",
    )
    de_ax.plot(
        epochs,
        [h["delta_energy_joint"] for h in history],
        color="tab:olive",
        ls=":",
        label="dE(x, y) (train)",
    )
    de_ax.axhline(0.0, color="grey", lw=0.5)
    de_ax.set_ylabel("delta energy", color="tab:green")
    for h in history:
        if h.get("alarm"):
            err_ax.axvline(h["epoch"], color="tab:red", lw=1, alpha=0.7)
    handles = err_ax.get_legend_handles_labels()[0] + de_ax.get_legend_handles_labels()[0]
    if any(h.get("alarm") for h in history):
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="tab:red", label="CO/RO alarm"))
    err_ax.legend(
        handles=handles, loc="upper center", fontsize=7, ncol=2, bbox_to_anchor=(0.5, -0.15)
    )
    err_ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
