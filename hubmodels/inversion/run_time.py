"""How long a CLIP^-1 run takes: the estimate the Space shows beside each CLIP tab's Steps slider.

A run costs (the encoder's load, while the process has not loaded it) + a fixed part + steps x
seconds per step (``estimate_seconds``). The fixed part and the seconds per step are a ``Pace``:
before a run has been measured, ``prior_pace`` gives them from the figures below; after one,
``pace_of_run`` reads them off the run's clock (``RunClock``) and they replace the prior. Where
each prior comes from (docs/benchmarks.md, "The Space's run-time estimate", gives them all):

* the CPU step: docs/inversion.md, "What a step costs" (ViT-B/32, 16 views, the 2-core CPU,
  medians of three runs), split into the encoder's floor and the INR's share per pixel;
* style transfer's content fit: derived from that INR share, not timed on its own;
* the GPU step and load: an assumption, no CLIP^-1 step has been measured on a GPU yet;
* loading ViT-B/32 on the CPU: docs/benchmarks.md, measured with random weights.

Pure (no torch, no Gradio): where measured paces are kept and how the estimate is worded are the
Space's (app.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CONTENT_FIT_STEPS",
    "CPU_INR_S_PER_PIXEL",
    "CPU_LOAD_S",
    "CPU_STEP_FLOOR_S",
    "GPU_LOAD_S",
    "GPU_STEP_S",
    "MAX_STEPS",
    "RENDER_GRID",
    "TASKS",
    "Pace",
    "RunClock",
    "estimate_seconds",
    "format_duration",
    "load_seconds",
    "pace_of_run",
    "prior_pace",
]

# CPU step, from docs/inversion.md ("What a step costs", ViT-B/32, 16 views, the 2-core CPU,
# medians of three runs): 1.878 s the encoder alone, 2.135 s a step on the default 112-px render
# grid, 2.845 s on the full 224-px grid. The INR's share grows with the grid's pixels,
# (2.845 - 2.135) s / (224² - 112²) = 1.9e-5 s a pixel, over a floor of 2.135 - 112² × 1.9e-5
# = 1.90 s: 2.07 s a step at the Space's CPU default of 96 px, 2.14 s at 224 px.
CPU_STEP_FLOOR_S = 1.90
CPU_INR_S_PER_PIXEL = 1.9e-5
RENDER_GRID = 112  # CLIPInverter's default render_resolution: the grid's side while optimising
# Style transfer first fits the content INR: CONTENT_FIT_STEPS AWP steps on the full image, each
# two INR passes (ascent and descent), so 2 × 1.9e-5 s a pixel on the CPU (105 s at 96 px). No
# such fit has been timed on its own; the step figures above are what it is derived from.
CONTENT_FIT_STEPS = 300  # CLIPInverter's content_fit_steps
# GPU: no CLIP⁻¹ step has been measured on a GPU yet (docs/inversion.md), so these are the
# assumption the Space's ZeroGPU budget (app.py, ``_gpu_seconds``) is sized with: 40 ms a step
# (an AWP step is taken to cost the same) and 20 s to load the encoder.
GPU_STEP_S = 0.04
GPU_LOAD_S = 20.0
# Loading ViT-B/32 on the CPU: 6 s measured with random weights (docs/benchmarks.md, "The
# Space's run-time estimate"); reading real weights adds their 600 MB, so 10 s.
CPU_LOAD_S = 10.0
MAX_STEPS = 5000  # as CLIPInverter allows
TASKS = ("text_to_image", "reconstruct", "style_transfer")  # CLIPInverter's, as it names them


@dataclass(frozen=True)
class Pace:
    """What one run of a CLIP^-1 task costs: a fixed part (style transfer's content fit, the
    target embeddings) and a part per optimisation step, in seconds."""

    step_s: float
    setup_s: float = 0.0


def prior_pace(task: str, device_type: str, resolution: int) -> Pace:
    """The pace of ``task`` before one has been measured (sources: the constants above)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; one of {sorted(TASKS)}")
    if device_type == "cuda":
        step_s = fit_step_s = GPU_STEP_S
    else:
        grid = min(resolution, RENDER_GRID)
        step_s = CPU_STEP_FLOOR_S + CPU_INR_S_PER_PIXEL * grid**2
        fit_step_s = 2 * CPU_INR_S_PER_PIXEL * resolution**2
    return Pace(step_s, CONTENT_FIT_STEPS * fit_step_s if task == "style_transfer" else 0.0)


def load_seconds(device_type: str) -> float:
    """About how long loading the encoder takes, before the first run of a process."""
    return GPU_LOAD_S if device_type == "cuda" else CPU_LOAD_S


def estimate_seconds(
    task: str,
    steps: float | None,
    device_type: str,
    resolution: int,
    measured: Pace | None = None,
    *,
    encoder_loaded: bool = False,
) -> float:
    """Seconds a ``task`` run of ``steps`` takes: the load while the encoder is not loaded, then
    the measured pace of the last run, or the prior before there was one.

    Pure, so the estimate can be tested without Gradio; a bad ``steps`` is a ``ValueError``.
    """
    steps = _valid_steps(steps)
    pace = measured or prior_pace(task, device_type, resolution)
    load = 0.0 if encoder_loaded else load_seconds(device_type)
    return load + pace.setup_s + steps * pace.step_s


def _valid_steps(steps: Any) -> int:
    whole = isinstance(steps, (int, float)) and not isinstance(steps, bool)
    if not whole or not math.isfinite(steps) or steps != int(steps):
        raise ValueError(f"Steps must be a whole number, got {steps!r}")
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"Steps must be between 1 and {MAX_STEPS}, got {int(steps)}")
    return int(steps)


def format_duration(seconds: float) -> str:
    """Seconds as a visitor reads a wait: 7 s, 45 s, 3 min, 1.5 h."""
    if seconds < 10:
        return f"{max(1, round(seconds))} s"
    if seconds < 100:
        return f"{5 * round(seconds / 5)} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def pace_of_run(
    steps: int, started: float, first: tuple[int, float] | None, ended: float, setup_s: float
) -> Pace:
    """The pace a run shows: per step from its first preview (at step k) to its end, and the
    rest of the time before that preview is the fixed part.

    A run with one preview only (fewer steps than ``preview_every``) cannot separate the two:
    it keeps ``setup_s``, the fixed part known so far, and charges the rest to its steps.
    """
    if first is not None and first[0] < steps:
        step, at = first
        step_s = (ended - at) / (steps - step)
        return Pace(step_s, max(0.0, at - started - step * step_s))
    return Pace(max(0.0, ended - started - setup_s) / steps, setup_s)


@dataclass
class RunClock:
    """When a run started, showed its first preview and ended, timed in the thread that runs it,
    so a slow browser draining the previews never inflates the pace (``pace_of_run``)."""

    started: float = 0.0
    first: tuple[int, float] | None = None
    ended: float = 0.0

    def run(self, task: Callable[..., Any], callback: Callable[..., None]) -> Any:
        """``task(callback=...)``, timed: ``callback`` gets every preview as before."""

        def timed(step: int, *rest: Any) -> None:
            if self.first is None:
                self.first = (step, time.monotonic())
            callback(step, *rest)

        self.started = time.monotonic()
        result = task(callback=timed)
        self.ended = time.monotonic()
        return result
