"""The explorer's two pictures, drawn with matplotlib's object API (no pyplot: thread-safe,
so a Space can draw for several visitors at once) and returned as PIL images.

* ``energy_figure``: per model, the joint energies E(x, y) of every class as bars with E(x)
  as a line, and E(x) on the histogram of real test images with the OOD threshold;
* ``trace_figure``: how far an attack has moved E(x) and E(x, y) from the clean input, step by
  step, one line per model. Shifts, not raw values: energies of different models live on
  different scales (a standard model's E(x) is near -11 where DER's is near -1).
"""

from __future__ import annotations

import io

import torch
from matplotlib.figure import Figure
from PIL import Image

from hubmodels.explorer.reference import EnergyReference
from hubmodels.explorer.report import EnergyReport
from hubmodels.explorer.trace import AttackStep

COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:purple")


def energy_figure(
    reports: dict[str, tuple[EnergyReport, EnergyReference | None]],
    class_names: list[str],
    index: int = 0,
) -> Image.Image:
    """One row per model: E(x, y) bars, then E(x) against the reference histogram."""
    fig = Figure(figsize=(10, 2.9 * len(reports)), dpi=80)
    axes = fig.subplots(len(reports), 2, squeeze=False)
    for row, (name, (report, reference)) in enumerate(reports.items()):
        bars, hist = axes[row]
        joint = report.joint[index].numpy()
        predicted = int(report.prediction[index])
        colours = ["tab:orange" if k == predicted else "tab:gray" for k in range(len(joint))]
        bars.bar(range(len(joint)), joint, color=colours)
        bars.axhline(float(report.marginal[index]), color="black", ls="--", lw=1, label="E(x)")
        bars.set_xticks(range(len(joint)), class_names, rotation=35, ha="right", fontsize=7)
        bars.set_ylabel("E(x, y) = -f(x)[y]", fontsize=8)
        bars.set_title(
            f"{name}: predicts {class_names[predicted]} "
            f"(p = {float(report.probabilities[index, predicted]):.2f})",
            fontsize=9,
        )
        bars.legend(fontsize=7, loc="lower right")
        energy = float(report.marginal[index])
        if reference is None or not reference.fitted:
            hist.text(0.5, 0.5, "no energy reference stored", ha="center", va="center")
            hist.set_axis_off()
            continue
        edges = reference.edges.numpy()
        hist.stairs(reference.counts.numpy(), edges, fill=True, color="tab:green", alpha=0.5)
        hist.axvline(energy, color="black", lw=2, label=f"this input, E(x) = {energy:.2f}")
        hist.axvline(
            float(reference.threshold), color="tab:red", ls="--", lw=1, label="OOD threshold"
        )
        lo, hi = min(edges[0], energy), max(edges[-1], energy)
        pad = 0.05 * (hi - lo)
        hist.set_xlim(lo - pad, hi + pad)
        hist.set_xlabel("E(x) (lower: more like the training data)", fontsize=8)
        hist.set_title(f"E(x) of real test images ({reference.shape.source})", fontsize=8)
        hist.legend(fontsize=7)
    fig.tight_layout()
    return _to_pil(fig)


def trace_figure(traces: dict[str, list[AttackStep]], index: int = 0) -> Image.Image:
    """E(x*) - E(x) and E(x*, y) - E(x, y) over the attack's steps, one line per model."""
    fig = Figure(figsize=(10, 3.2), dpi=80)
    marginal_ax, joint_ax = fig.subplots(1, 2)
    for colour, (name, trace) in zip(COLOURS, traces.items(), strict=False):
        steps = [s.step for s in trace]
        marginal = torch.stack([s.marginal[index] for s in trace])
        joint = torch.stack([s.joint[index] for s in trace])
        marginal_ax.plot(steps, (marginal - marginal[0]).numpy(), color=colour, label=name)
        joint_ax.plot(steps, (joint - joint[0]).numpy(), color=colour, label=name)
        flips = [s.step for s in trace if s.prediction[index] != trace[0].prediction[index]]
        if flips:  # where the prediction first changes
            joint_ax.axvline(flips[0], color=colour, ls=":", lw=1)
    marginal_ax.set_title("shift of E(x) during the attack", fontsize=9)
    joint_ax.set_title("shift of E(x, y), true class (dotted: prediction flips)", fontsize=9)
    for ax in (marginal_ax, joint_ax):
        ax.axhline(0, color="black", lw=0.5)
        ax.set_xlabel("PGD step", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _to_pil(fig)


def _to_pil(fig: Figure) -> Image.Image:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    buffer.seek(0)
    with Image.open(buffer) as image:
        return image.convert("RGB")
