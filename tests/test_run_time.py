"""How long a CLIP^-1 run takes: the priors, the estimate and the pace a run measures.

The Space's note built on it (the pace file, the wording, the slider) is tested in test_app.py.
"""

from __future__ import annotations

import pytest

from hubmodels.inversion import run_time
from hubmodels.inversion.run_time import (
    Pace,
    RunClock,
    estimate_seconds,
    format_duration,
    load_seconds,
    pace_of_run,
    prior_pace,
)


def test_the_estimate_grows_with_steps():
    for device, resolution in [("cpu", 96), ("cpu", 224), ("cuda", 224)]:
        for task in run_time.TASKS:
            times = [estimate_seconds(task, n, device, resolution) for n in (1, 30, 400)]
            assert times == sorted(set(times)), (task, device, resolution)


def test_the_cpu_prior_gives_back_the_documented_step_costs():
    """docs/inversion.md: 2.135 s a step on the 112-px grid of a 224-px image, 2.845 s on 224."""
    assert prior_pace("text_to_image", "cpu", 224).step_s == pytest.approx(2.135, rel=0.01)
    full_grid = run_time.CPU_STEP_FLOOR_S + run_time.CPU_INR_S_PER_PIXEL * 224**2
    assert full_grid == pytest.approx(2.845, rel=0.01)
    minutes = estimate_seconds("text_to_image", 400, "cpu", 224, encoder_loaded=True) / 60
    assert 13 < minutes < 15  # README: "400 steps take about 14 minutes on a basic 2-core CPU"


def test_the_estimate_counts_the_encoder_load_only_until_it_is_loaded():
    for device in ("cpu", "cuda"):
        cold = estimate_seconds("reconstruct", 30, device, 96)
        warm = estimate_seconds("reconstruct", 30, device, 96, encoder_loaded=True)
        assert cold - warm == pytest.approx(load_seconds(device)) and warm < cold


def test_a_measured_pace_replaces_the_prior():
    measured = Pace(step_s=0.5, setup_s=3.0)
    for task in run_time.TASKS:  # the content fit too: the run measured its own
        seconds = estimate_seconds(task, 30, "cpu", 96, measured, encoder_loaded=True)
        assert seconds == pytest.approx(3.0 + 30 * 0.5)


def test_style_transfer_includes_fitting_the_content_image():
    for device, resolution in [("cpu", 96), ("cuda", 224)]:
        fit = prior_pace("style_transfer", device, resolution).setup_s
        assert fit > 0 and prior_pace("text_to_image", device, resolution).setup_s == 0
        style, text = (
            estimate_seconds(task, 30, device, resolution)
            for task in ("style_transfer", "text_to_image")
        )
        assert style - text == pytest.approx(fit)
    assert prior_pace("style_transfer", "cpu", 96).setup_s == pytest.approx(105, rel=0.02)


def test_an_unknown_task_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown task 'edit'; one of"):
        prior_pace("edit", "cpu", 96)


@pytest.mark.parametrize("steps", [float("nan"), -3, 0, None, 2.5, 10**6, "30", True])
def test_a_bad_steps_value_is_a_value_error_that_says_so(steps):
    with pytest.raises(ValueError, match="Steps must be"):
        estimate_seconds("text_to_image", steps, "cpu", 96)


def test_a_duration_reads_as_a_visitor_reads_a_wait():
    assert [format_duration(s) for s in (0.2, 7.4, 12, 44, 150, 5400)] == [
        "1 s",
        "7 s",
        "10 s",
        "45 s",
        "2 min",
        "1.5 h",
    ]


def test_the_pace_of_a_run_splits_its_fixed_part_from_its_steps():
    # first preview at step 10 after 25 s, done at 65 s: 2 s a step, and 5 s came before them
    assert pace_of_run(30, 0.0, (10, 25.0), 65.0, setup_s=99.0) == Pace(2.0, 5.0)
    # one preview only (5 steps < preview_every): the fixed part known so far stays
    assert pace_of_run(5, 0.0, (5, 20.0), 20.0, setup_s=7.0) == Pace(2.6, 7.0)


def test_the_run_clock_times_the_first_preview_and_passes_every_preview_on():
    seen = []

    def task(callback):
        for step in (10, 20):
            callback(step, f"preview {step}")
        return "done"

    clock = RunClock()
    assert clock.run(task, lambda *preview: seen.append(preview)) == "done"
    assert seen == [(10, "preview 10"), (20, "preview 20")]
    assert clock.first[0] == 10 and clock.started <= clock.first[1] <= clock.ended


def test_the_estimates_copies_of_the_inverters_defaults_match_the_package():
    import inspect

    from hubmodels import CLIPInverter
    from hubmodels.inversion import inverter

    defaults = inspect.signature(CLIPInverter).parameters
    assert defaults["content_fit_steps"].default == run_time.CONTENT_FIT_STEPS
    assert defaults["render_resolution"].default == run_time.RENDER_GRID
    assert inverter.MAX_STEPS == run_time.MAX_STEPS
