"""The hubmodels Space: discriminative models that generate images, in the browser.

Robust classifiers read as energy-based models (WEAT, DER) and a frozen CLIP used as a decoder
(CLIP^-1). Each tab is one small function that lays out its components and wires them to one
package call; no model code lives here. The tabs, those that work offline first:

* **Class sampling**: class-conditional samples from an embedded robust classifier (WEAT / DER
  samplers), streamed while they form;
* **Energy explorer**: one input's energies under two presets side by side, its
  out-of-distribution verdict, and a PGD attack streamed step by step in energies;
* **Text-to-image**, **Reconstruction**, **Style transfer**: CLIPInverter's tasks with the
  encoder ``SpaceSettings`` names (flags or environment variables: ``HOW_TO_CONFIGURE``);
  without loadable weights the tabs stay and say why in one sentence when used (the server log
  says how to configure them); beside Steps, each says how long a run will take here;
* **Models**: the embedded presets with their threat model and measured accuracies, and for the
  one picked, its model card and delta-energy training plot.

Start-up only reads small files (config.json, README.md); models are built when a tab needs one.
``import app`` starts nothing; ``app.build_demo(app.SpaceSettings(clip=..., pretrained=...))``
builds the Space from Python, and ``main`` reads flags over the environment once.

Run locally with ``python app.py [--host 0.0.0.0] [--port 7860]``; on Hugging Face Spaces the
platform sets GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, which are the defaults here.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import io
import json
import logging
import math
import os
import queue
import random
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import torch
from PIL import Image

from hubmodels import CheckpointError
from hubmodels import presets_catalog as catalog
from hubmodels.inversion import run_time
from hubmodels.sampling import SamplerSettings

# A visitor's mistake (a bad upload, an empty prompt) is shown in the UI and not logged with a
# traceback: the server log keeps real failures readable.
UserError = functools.partial(gr.Error, print_exception=False)

TITLE = "hubmodels: discriminative models that generate images"
INTRO = (
    "# hubmodels\n"
    "Discriminative models generate images. A robust classifier is an energy-based model, "
    "E(x) = -logsumexp f(x): sample classes from it. A frozen CLIP is a decoder (CLIP⁻¹): "
    "render text, reconstruct and restyle images by optimising a small INR. Everything here is "
    "[hubmodels](https://github.com/hubmodels/hubmodels); load the classifiers offline with "
    '`RobustClassifier.from_pretrained("<name>")`.'
)
NO_PRESETS = (
    "**No preset is installed yet.** Train one with `python -m hubmodels train ...`, register "
    "its folder in `hubmodels/hub.py`, and it will be listed here."
)
TABLE_NOTE = (
    "Accuracies are on the test set when `python -m hubmodels eval` has measured them; otherwise "
    "they are the validation numbers saved with the checkpoint (the *measured on* column says "
    "which). Threat-model budgets are on the [0, 1] pixel scale."
)


# ---------------------------------------------------------------------------- Models tab
def show_model(name: str) -> tuple[str, Image.Image | None]:
    """The model card (Markdown) and training plot of a preset: the ``/model_card`` endpoint."""
    try:
        card = catalog.model_card_markdown(name)
        plot = catalog.training_plot_path(name)
    except CheckpointError as err:
        raise UserError(str(err)) from err  # shown in the UI and raised by gradio_client
    # A PIL image, not a path: gradio only serves paths under cwd or the temp dir, and an
    # installed package's presets live elsewhere.
    return card, _load_image(plot) if plot else None


def _load_image(path: os.PathLike) -> Image.Image:
    with Image.open(path) as image:
        return image.copy()  # read now, so the file is closed before gradio encodes it


def models_tab() -> None:
    """Table of installed presets; pick one to read its card and see its training plot."""
    names = catalog.installed_presets()
    missing = catalog.missing_presets()
    status = TABLE_NOTE if names else NO_PRESETS
    if missing:  # a broken install should be visible, not silently shorter
        status += f"\n\nRegistered but missing from this install: {', '.join(missing)}."
    gr.Markdown(status)
    # The components exist even with no preset, so the /model_card endpoint is always there.
    gr.Dataframe(
        value=catalog.preset_rows(),
        headers=catalog.COLUMNS,
        interactive=False,
        wrap=False,  # wrapping broke headers mid-word ("architectu re"); the table scrolls
        label="Installed presets",
        visible=bool(names),
    )
    first = names[0] if names else None
    card, plot = show_model(first) if first else ("", None)
    choice = gr.Dropdown(choices=names, value=first, label="Model", visible=bool(names))
    # Stacked, not side by side: a card's code and tables need the full width. The plot's
    # title says what it is; a label would cover it.
    with gr.Column(visible=bool(names)):
        plot_img = _image_output(plot, show_label=False, interactive=False, height=360)
        card_md = gr.Markdown(card, container=True)
    choice.change(show_model, inputs=choice, outputs=[card_md, plot_img], api_name="model_card")


# ---------------------------------------------------------------------------- streaming
def _stream(task: Callable[[Callable[..., None]], Any]) -> Iterator[tuple[bool, Any]]:
    """Run ``task(callback)`` in a thread; yield (False, callback args) per preview, then
    (True, its result).

    Package calls stream through callbacks, Gradio through generators; a queue joins the two.
    Tensors are copied as they arrive, since the task keeps updating them in place. The user's
    mistakes (``ValueError``, a diverging ``FloatingPointError``) become ``gr.Error``.
    """
    previews: queue.Queue = queue.Queue()
    outcome: dict[str, Any] = {}

    def snapshot(*args: Any) -> None:
        previews.put(
            tuple(a.detach().cpu().clone() if isinstance(a, torch.Tensor) else a for a in args)
        )

    def work() -> None:
        try:
            outcome["result"] = task(snapshot)
        except (ValueError, FloatingPointError) as err:
            outcome["error"] = err
        finally:
            previews.put(None)

    threading.Thread(target=work, daemon=True).start()
    while (item := previews.get()) is not None:
        yield False, item
    if "error" in outcome:
        raise UserError(str(outcome["error"]))
    yield True, outcome["result"]


# ---------------------------------------------------------------------------- Class sampling tab
SAMPLING_INITS = ["local_pca", "pca", "gaussian", "uniform"]
MAX_PER_CLASS, MAX_STEPS = 16, 200  # CPU-sized: a full grid in seconds, not minutes
GRID_SCALE = 3  # 28-pixel samples are shown at 84 pixels


@functools.lru_cache(maxsize=8)
def _classifier(name: str):
    """Each preset is loaded once per process and shared by every request."""
    from accelerate import PartialState

    from hubmodels import RobustClassifier

    return RobustClassifier.from_pretrained(name, map_location=PartialState().device)


def _whole(name: str, value: float | None, low: int, high: int) -> int:
    if value is None or not math.isfinite(value) or value != int(value):
        raise UserError(f"{name} must be a whole number, got {value}")
    if not low <= value <= high:
        raise UserError(f"{name} must be between {low} and {high}, got {int(value)}")
    return int(value)


def _grid(images, columns: int) -> Image.Image:
    """(N, C, H, W) in [0, 1] -> one image, ``columns`` samples per row, enlarged."""
    from hubmodels.images import image_grid

    return image_grid(images, columns, scale=GRID_SCALE)


@functools.lru_cache(maxsize=4)
def _training_set(dataset: str) -> tuple[torch.Tensor, float]:
    """A dataset's training images (N, D) and the median nearest-training-image distance of
    its test images: the yardstick of the copy ratio. Loaded once per process."""
    from hubmodels.metrics import nearest_neighbours
    from hubmodels.training.data import load_dataset

    splits = load_dataset(dataset, augment=False, val_size=0)

    def flat(ds) -> torch.Tensor:
        return torch.stack([ds[i][0] for i in range(len(ds))]).flatten(1)

    train = flat(splits.train)
    held_out, _ = nearest_neighbours(flat(splits.test)[:2000], train)
    return train, float(held_out.median())


def _with_nearest(images: torch.Tensor, labels: list[int], dataset: str) -> tuple[Any, str]:
    """Interleave each class's samples with their nearest training images; the copy ratio."""
    from hubmodels.metrics import nearest_neighbours

    try:
        train, reference = _training_set(dataset)
    except (FileNotFoundError, ValueError) as err:
        return images, (
            f"Nearest training images are not shown: the {dataset} training set is not on "
            f"this server ({str(err).splitlines()[0]})."
        )
    distance, index = nearest_neighbours(images.flatten(1).cpu(), train)
    nearest = train[index].view_as(images.cpu())
    rows = []
    for y in dict.fromkeys(labels):
        mine = torch.tensor([i for i, label in enumerate(labels) if label == y])
        rows += [images.cpu()[mine], nearest[mine]]
    ratio = float(distance.median()) / reference
    verdict = "new images" if ratio >= 0.8 else "close to training images: near-copies"
    return torch.cat(rows), (
        f"Below each row of samples: its nearest training image. Copy ratio {ratio:.2f} "
        f"(median distance to the nearest training image, divided by that of real test "
        f"images; 1.0 for fresh real data): {verdict}."
    )


def sample_classes(
    preset: str,
    classes: list[str],
    n_per_class: float,
    init: str,
    guidance: bool,
    adaptive_stop: bool,
    steps: float,
    seed: float,
    show_nearest: bool = False,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 - gradio injects it by this default
) -> Iterator[tuple[Image.Image, str, str | None]]:
    """Stream (grid, status, PNG) while ``RobustClassifier.sample`` runs: /class_sampling."""
    n = _whole("Samples per class", n_per_class, 1, MAX_PER_CLASS)
    steps = _whole("Steps", steps, 1, MAX_STEPS)
    seed = _whole("Seed", seed, 0, 2**31 - 1)
    if preset not in catalog.installed_presets():
        raise UserError(f"unknown model {preset!r}; pick one of {catalog.installed_presets()}")
    if init not in SAMPLING_INITS:
        raise UserError(f"the start must be one of {SAMPLING_INITS}, got {init!r}")
    try:
        model = _classifier(preset)
    except CheckpointError as err:
        raise UserError(str(err)) from err
    if not classes:
        raise UserError("pick at least one class")
    chosen = list(classes)
    settings = dict(
        init=init, guidance=bool(guidance), adaptive_stop=bool(adaptive_stop), steps=steps
    )
    task = functools.partial(model.sample, chosen, n, seed=seed, **settings)
    for done, payload in _stream(lambda callback: task(callback=callback)):
        if not done:
            step, images, _info = payload
            progress((min(step, steps), steps), desc="sampling")
            yield _grid(images, n), f"Sampling: step {step} of at most {steps}...", None
    out = payload
    names = [model.class_names[y] for y in dict.fromkeys(out.labels)]
    mean_steps = sum(out.steps) / len(out.steps)
    took = (
        f"{out.steps[0]} steps each"
        if min(out.steps) == max(out.steps)
        else f"{mean_steps:.1f} steps on average, {min(out.steps)}-{max(out.steps)} (cap {steps})"
    )
    status = (
        f"**{_count(len(out.labels), 'sample')}** of {', '.join(names)} from `{preset}`, seed "
        f"{seed}: start `{init}`, energy guidance {_on(settings['guidance'])}, adaptive stop "
        f"{_on(settings['adaptive_stop'])}, {took}. "
        f"Reproduce: `RobustClassifier.from_pretrained({preset!r}).sample({names!r}, {n}, "
        f"seed={seed}, init={init!r}, guidance={settings['guidance']}, "
        f"adaptive_stop={settings['adaptive_stop']}, steps={steps})`"
    )
    from hubmodels.images import save_png

    shown = out.tensors
    if show_nearest:
        shown, note = _with_nearest(out.tensors, out.labels, model.config["dataset"])
        status += "\n\n" + note
    grid = _grid(shown, n)
    record = dict(task="class_sampling", model=preset, classes=names, n_per_class=n, seed=seed)
    path = save_png(grid, _download_path(f"samples-{preset}-{seed}", grid), {**record, **settings})
    yield grid, status, str(path)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def _seed_input() -> gr.Number:
    """A seed box with a button that draws a fresh one."""
    with gr.Row():
        seed = gr.Number(0, precision=0, label="Seed", minimum=0)
        shuffle = gr.Button("Randomise seed", size="sm")
    shuffle.click(lambda: random.randint(0, 2**31 - 1), outputs=seed, api_name=False)
    return seed


def _sampling_preset() -> str | None:
    """The preset the Class sampling tab starts on: DER's, whose sampler the tab is about."""
    names = catalog.installed_presets()
    return "fmnist-smallcnn-der" if "fmnist-smallcnn-der" in names else (names or [None])[0]


def sampling_tab() -> None:
    """Pick a preset, classes and sampler options; watch the samples form."""
    names = catalog.installed_presets()
    default = _sampling_preset()
    class_names = catalog.class_names(default) if default else []
    gr.Markdown(
        "Start from a class prior stored in the checkpoint and descend the joint energy "
        "E(x, y) = -f(x)[y] with SGLD (WEAT), weighing in the model's own p(y|x) so each "
        "sample stays in its class; DER adds energy guidance and adaptive stopping. Robust "
        "models generate; the standard one does not. The start is a blurry local class "
        "average, never a stored training image: tick *Show nearest training "
        "images* to see that the samples are new."
    )
    with gr.Row():
        with gr.Column(scale=1):
            preset = gr.Dropdown(names, value=default, label="Model")
            classes = gr.CheckboxGroup(class_names, value=class_names[:4], label="Classes")
            n_per_class = gr.Slider(1, MAX_PER_CLASS, value=8, step=1, label="Samples per class")
            init = gr.Radio(SAMPLING_INITS, value="local_pca", label="Start (prior)")
            guidance = gr.Checkbox(False, label="Energy guidance (DER)")
            adaptive = gr.Checkbox(False, label="Adaptive stopping (DER)")
            steps = gr.Slider(
                1, MAX_STEPS, value=SamplerSettings.steps, step=1, label="Steps (cap)"
            )
            nearest = gr.Checkbox(False, label="Show nearest training images (needs the data)")
            seed = _seed_input()
            run = gr.Button("Sample", variant="primary")
        with gr.Column(scale=2):
            gr.Markdown("**Samples**, one row per class")  # a label would cover a sample
            grid = _image_output(show_label=False)
            status = gr.Markdown()
            download = gr.File(label="PNG with its settings in the metadata")
    preset.change(
        lambda name: gr.CheckboxGroup(choices=catalog.class_names(name)),
        inputs=preset,
        outputs=classes,
        api_name=False,
    )
    inputs = [preset, classes, n_per_class, init, guidance, adaptive, steps, seed, nearest]
    if default:  # computed when first clicked, then served from the cache; never at start-up
        gr.Examples(
            [
                [
                    default,
                    ["Sneaker", "Bag", "Ankle boot"],
                    8,
                    "local_pca",
                    False,
                    False,
                    SamplerSettings.steps,
                    0,
                    False,
                ],
                [default, ["Dress", "Coat"], 8, "local_pca", True, True, 50, 0, False],
                [default, ["Dress", "Coat"], 8, "uniform", False, False, 50, 0, False],
            ],
            inputs=inputs,
            outputs=[grid, status, download],
            fn=sample_classes,
            cache_examples=True,
            cache_mode="lazy",
            label="Examples: the default sampler, DER's guidance with adaptive stop, and the "
            "noise start that fails",
        )
    _wire(run, sample_classes, inputs, [grid, status, download], "class_sampling")


# ---------------------------------------------------------------------------- Energy explorer tab
EXPLORER_SOURCES = ["Test image", "Class sample", "Upload"]
MAX_ATTACK_STEPS, MAX_EPSILON = 50, 0.5
EXPLORER_SCALE = 6  # 28-pixel inputs are shown at 168 pixels


@functools.lru_cache(maxsize=4)
def _test_set(dataset: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A dataset's test images and labels, loaded once per process."""
    from hubmodels.training.data import load_dataset

    test = load_dataset(dataset, augment=False, val_size=0).test
    return torch.stack([test[i][0] for i in range(len(test))]), test.labels.clone()


def _explorer_models(preset_a: str, preset_b: str) -> dict[str, Any]:
    """The two presets side by side (one, when both pickers name the same)."""
    models = {}
    for name in dict.fromkeys([preset_a, preset_b]):
        if name not in catalog.installed_presets():
            raise UserError(f"unknown model {name!r}; pick one of {catalog.installed_presets()}")
        try:
            models[name] = _classifier(name)
        except CheckpointError as err:
            raise UserError(str(err)) from err
    first, *others = models.values()
    for other in others:
        if other.class_names != first.class_names or other.input_shape != first.input_shape:
            raise UserError("the two models must share their classes and input size")
    return models


def _explorer_input(
    models: dict[str, Any], source: str, class_name: str, index: float, upload: str | None
) -> tuple[torch.Tensor, int, str]:
    """The input (1, C, H, W), its label y and a sentence on where it came from."""
    name, model = next(iter(models.items()))
    if class_name not in model.class_names:
        raise UserError(f"pick a class: one of {model.class_names}")
    y = model.class_names.index(class_name)
    index = _whole("Index / seed", index, 0, 2**31 - 1)
    if source == "Test image":
        try:
            images, labels = _test_set(model.config["dataset"])
        except (FileNotFoundError, ValueError) as err:
            raise UserError(
                f"the {model.config['dataset']} test set is not on this server "
                f"({str(err).splitlines()[0]}); pick Class sample or Upload"
            ) from err
        members = torch.nonzero(labels == y).flatten()
        chosen = int(members[index % len(members)])
        return images[chosen : chosen + 1], y, f"test image {chosen} ({class_name})"
    if source == "Class sample":
        # Drawn as the Class sampling tab draws it (its preset, the default sampler), so a
        # standard model A still gets a real sample to look at.
        sampler_name = _sampling_preset() or name
        try:
            sampler = _classifier(sampler_name)
        except CheckpointError as err:
            raise UserError(str(err)) from err
        if sampler.class_names != model.class_names:
            sampler_name, sampler = name, model
        sample = sampler.sample([y], 1, seed=index)
        return (
            sample.tensors.cpu(),
            y,
            f"a {class_name} sample from `{sampler_name}` (seed {index}, default sampler)",
        )
    if source == "Upload":
        if not upload:
            raise UserError("upload an image first (or pick Test image / Class sample)")
        from hubmodels.explorer import to_model_input

        channels, size, _ = model.input_shape
        try:
            x, how = to_model_input(upload, channels, size)
        except ValueError as err:
            raise UserError(f"that upload cannot be used: {err}") from err
        return x, y, f"your upload: {how} Its label for E(x, y) is {class_name}"
    raise UserError(f"the input must be one of {EXPLORER_SOURCES}, got {source!r}")


def _enlarged(images: torch.Tensor) -> Image.Image:
    picture = _grid(images, len(images))
    scale = EXPLORER_SCALE / GRID_SCALE
    size = (round(picture.width * scale), round(picture.height * scale))
    return picture.resize(size, Image.NEAREST)


def _verdict_table(reports: dict[str, Any], class_names: list[str]) -> str:
    rows = [
        "| model | prediction | E(x) | share of test images with lower E(x) | OOD score −E(x) "
        "| threshold (95 % of test images above) | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, report in reports.items():
        k = int(report.prediction[0])
        predicted = f"{class_names[k]} (p = {float(report.probabilities[0, k]):.2f})"
        if report.ood_threshold is None:
            extra = "not stored | not stored | –"
        else:
            verdict = "out of distribution" if bool(report.out_of_distribution[0]) else "in"
            extra = (
                f"{100 * float(report.percentile[0]):.0f} % | {float(report.ood_score[0]):.2f} "
                f"| {report.ood_threshold:.2f} | **{verdict}**"
            )
        rows.append(f"| `{name}` | {predicted} | {float(report.marginal[0]):.2f} | {extra} |")
    return "\n".join(rows)


def explore_energies(
    preset_a: str,
    preset_b: str,
    source: str,
    class_name: str,
    index: float,
    upload: str | None = None,
) -> tuple[Image.Image, Image.Image, str]:
    """(input, energies figure, report) for one input under two models: /energy_report."""
    from hubmodels.explorer.plots import energy_figure

    models = _explorer_models(preset_a, preset_b)
    x, _, origin = _explorer_input(models, source, class_name, index, upload)
    reports = {name: model.energy_report(x.to(model.mean.device)) for name, model in models.items()}
    class_names = next(iter(models.values())).class_names
    figure = energy_figure(
        {name: (reports[name], models[name].energy_reference) for name in models}, class_names
    )
    status = f"Input: {origin}.\n\n" + _verdict_table(reports, class_names)
    return _enlarged(x), figure, status


def attack_energies(
    preset_a: str,
    preset_b: str,
    source: str,
    class_name: str,
    index: float,
    upload: str | None,
    targeted: bool,
    target_name: str | None,
    epsilon: float,
    steps: float,
) -> Iterator[tuple[Image.Image, Image.Image, str]]:
    """Stream PGD on the input against both models, step by step: /energy_attack.

    Yields (clean | each model's adversarial image and amplified perturbation, the energy
    shifts so far, a status line)."""
    from hubmodels.explorer.plots import trace_figure

    steps = _whole("Steps", steps, 1, MAX_ATTACK_STEPS)
    if epsilon is None or not math.isfinite(epsilon) or not 0 < epsilon <= MAX_EPSILON:
        raise UserError(f"ε must be in (0, {MAX_EPSILON}], got {epsilon}")
    models = _explorer_models(preset_a, preset_b)
    x, y, origin = _explorer_input(models, source, class_name, index, upload)
    class_names = next(iter(models.values())).class_names
    target = None
    if targeted:
        if target_name not in class_names:
            raise UserError(f"pick a target class: one of {class_names}")
        target = class_names.index(target_name)
        if target == y:
            raise UserError("the target class must differ from the input's class")
    traces: dict[str, list] = {}
    for name, model in models.items():
        traces[name] = []
        task = functools.partial(
            model.attack_trace, x.to(model.mean.device), y, eps=epsilon, steps=steps, target=target
        )
        for done, payload in _stream(lambda callback, t=task: t(callback=callback)):
            if done:
                break
            (step,) = payload
            traces[name].append(step)
            status = f"Attacking `{name}`: step {step.step} of {steps}..."
            yield _attack_picture(x, traces, epsilon), trace_figure(traces), status
    kind = f"targeted at {target_name}" if targeted else "untargeted"
    lines = [f"PGD ({kind}, ε = {epsilon:g}, {steps} steps, step ε/4) on {origin}."]
    for name, trace in traces.items():
        first, last = trace[0], trace[-1]
        flips = [s.step for s in trace if s.prediction[0] != first.prediction[0]]
        flipped = (
            f"prediction {class_names[int(first.prediction[0])]} → "
            f"{class_names[int(last.prediction[0])]} (first flips at step {flips[0]})"
            if flips
            else f"prediction stays {class_names[int(first.prediction[0])]}"
        )
        e0, e1 = float(first.marginal[0]), float(last.marginal[0])
        j0, j1 = float(first.joint[0]), float(last.joint[0])
        lines.append(
            f"- `{name}`: {flipped}; E(x) {e0:.2f} → {e1:.2f} (shift {e1 - e0:+.2f}); "
            f"E(x, y) {j0:.2f} → {j1:.2f} (shift {j1 - j0:+.2f})"
        )
    yield _attack_picture(x, traces, epsilon), trace_figure(traces), "\n".join(lines)


def _attack_picture(x: torch.Tensor, traces: dict[str, list], epsilon: float) -> Image.Image:
    """The clean input, then per model its adversarial image and its perturbation (mid-grey is
    zero; amplified so that ±ε spans black to white)."""
    tiles = [x.cpu()]
    for trace in traces.values():
        if trace:
            tiles += [trace[-1].images, (trace[-1].perturbation / (2 * epsilon) + 0.5).clamp(0, 1)]
    return _enlarged(torch.cat(tiles))


def explorer_tab() -> None:
    """Pick an input; see its energies under two models; attack it and watch them move."""
    names = catalog.installed_presets()
    robust = "fmnist-smallcnn-weat" if "fmnist-smallcnn-weat" in names else (names or [None])[-1]
    standard = "fmnist-smallcnn-standard" if "fmnist-smallcnn-standard" in names else robust
    try:
        class_names = catalog.class_names(standard) if standard else []
    except CheckpointError:  # a broken preset must not stop the Space; using it says why
        class_names = []
    gr.Markdown(
        "A classifier is an energy-based model: E(x, y) = −f(x)[y] for each class and "
        "E(x) = −logsumexp f(x), lower for inputs the model finds likely. Energies also flag "
        "inputs from elsewhere: −E(x) below the threshold that keeps 95 % of the model's test "
        "images is called *out of distribution*. Attack the input and watch the energies move: "
        "the standard model's shift far and its prediction flips; a robust model's barely move."
    )
    with gr.Row():
        with gr.Column(scale=1):
            preset_a = gr.Dropdown(names, value=standard, label="Model A")
            preset_b = gr.Dropdown(names, value=robust, label="Model B")
            source = gr.Radio(EXPLORER_SOURCES, value="Test image", label="Input")
            class_name = gr.Dropdown(
                class_names, value=(class_names or [None])[0], label="Class (label of uploads)"
            )
            index = gr.Number(0, precision=0, minimum=0, label="Index in the class / sample seed")
            upload = gr.File(label="Upload (any image)", file_types=["image"], type="filepath")
            show = gr.Button("Show energies", variant="primary")
            with gr.Accordion("Attack it (PGD)", open=True):
                targeted = gr.Checkbox(False, label="Targeted")
                target = gr.Dropdown(class_names, value=None, label="Target class")
                epsilon = gr.Slider(0.01, MAX_EPSILON, value=0.1, step=0.01, label="ε (L∞)")
                steps = gr.Slider(1, MAX_ATTACK_STEPS, value=20, step=1, label="Steps")
                attack = gr.Button("Attack", variant="secondary")
        with gr.Column(scale=2):
            # Labels off: gradio draws them over the image's top-left corner, where the
            # input and the figures' titles are; the caption and the titles say it instead.
            gr.Markdown("**Input**, then per model: adversarial image, perturbation (grey = 0)")
            picture = _image_output(show_label=False)
            figure = _image_output(show_label=False)
            shifts = _image_output(show_label=False)
            report = gr.Markdown()
    inputs = [preset_a, preset_b, source, class_name, index, upload]
    if standard and {"Sneaker", "Bag", "Shirt"} <= set(class_names):  # the Fashion-MNIST presets
        gr.Examples(
            [
                [standard, robust, "Test image", "Sneaker", 0, None],
                [standard, robust, "Class sample", "Bag", 0, None],
                [standard, robust, "Upload", "Shirt", 0, _example_photo()],
            ],
            inputs=inputs,
            label="Examples (they fill the inputs; press Show energies or Attack): a test "
            "image, a generated bag, and a photo of a person, which is no garment",
        )
    _wire(show, explore_energies, inputs, [picture, figure, report], "energy_report")
    attack_inputs = inputs + [targeted, target, epsilon, steps]
    _wire(attack, attack_energies, attack_inputs, [picture, shifts, report], "energy_attack")


# ---------------------------------------------------------------------------- CLIP^-1 tabs
# Which encoders the CLIP tabs use: flags, or environment variables as on a Hugging Face Space.
ENV_CLIP, ENV_PRETRAINED, ENV_BANK = "HUBMODELS_CLIP", "HUBMODELS_CLIP_PRETRAINED", "HUBMODELS_BANK"
ENV_IMAGE_ENCODER, ENV_IMAGE_WEIGHTS = "HUBMODELS_IMAGE_ENCODER", "HUBMODELS_IMAGE_ENCODER_WEIGHTS"
ENV_RESOLUTION, ENV_STEPS = "HUBMODELS_RESOLUTION", "HUBMODELS_STEPS"
# For the Space's operator (README and the server log), never shown to a visitor.
HOW_TO_CONFIGURE = (
    f"Set {ENV_CLIP} (open_clip model, default ViT-B-32) and {ENV_PRETRAINED} (a tag such as "
    f"openai, which needs internet or the Hugging Face cache, a local weights file, or random), "
    f"and optionally {ENV_BANK} (a saved CLIPInverter with its anchor bank); reconstruction and "
    f"style images also take any image encoder: {ENV_IMAGE_ENCODER}=timm:efficientnet_lite0 and "
    f"{ENV_IMAGE_WEIGHTS}=<weights file>."
)


@dataclass(frozen=True)
class SpaceSettings:
    """What the CLIP tabs run on. ``main`` reads it once from flags over the environment;
    ``build_demo(settings)`` takes one, so the Space can be built from Python too.

    ``pretrained``: an open_clip tag (needs the internet or the hub cache), a local weights
    file, or "random" (a demonstration whose images mean nothing). ``resolution`` and ``steps``
    default by device: 224 px and 400 steps on a GPU, 96 px and 30 steps on a CPU.
    """

    clip: str = "ViT-B-32"
    pretrained: str = "openai"
    bank: str | None = None
    image_encoder: str | None = None
    image_encoder_weights: str | None = None
    resolution: int | None = None
    steps: int | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> SpaceSettings:
        """The settings a Hugging Face Space's variables describe (unset: the defaults)."""

        def number(name: str) -> int | None:
            return int(environ[name]) if environ.get(name) else None

        return cls(
            clip=environ.get(ENV_CLIP) or cls.clip,
            pretrained=environ.get(ENV_PRETRAINED) or cls.pretrained,
            bank=environ.get(ENV_BANK) or None,
            image_encoder=environ.get(ENV_IMAGE_ENCODER) or None,
            image_encoder_weights=environ.get(ENV_IMAGE_WEIGHTS) or None,
            resolution=number(ENV_RESOLUTION),
            steps=number(ENV_STEPS),
        )

    @property
    def default_steps(self) -> int:
        return self.steps or (400 if _device_type() == "cuda" else 30)

    @property
    def default_resolution(self) -> int:
        # CPU-sized defaults: an image in about a minute; a GPU affords the paper's 224 px.
        return self.resolution or (224 if _device_type() == "cuda" else 96)


def _device_type() -> str:
    """What the CLIP tabs run on, "cuda" or "cpu": it sets their defaults and estimates.

    On ZeroGPU a GPU is attached only while a ``spaces.GPU`` function runs, so the process that
    builds the page may not see one; the runtime's own marker says the runs will have it.
    """
    zero_gpu = os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "true")
    return "cuda" if zero_gpu or torch.cuda.is_available() else "cpu"


# The Space's one configuration and the encoders loaded for it. Module state, set only through
# ``configure``: ZeroGPU runs the tab functions as module-level functions, so they cannot be
# methods of an object holding the settings.
_settings: SpaceSettings | None = None
_inverters: dict[str, Any] = {}  # kind -> CLIPInverter, or the reason it could not be loaded


def configure(settings: SpaceSettings) -> SpaceSettings:
    """Make ``settings`` the Space's; encoders loaded for other settings are dropped."""
    global _settings
    if settings != _settings:
        _inverters.clear()
    _settings = settings
    return settings


def current_settings() -> SpaceSettings:
    """The configured settings; read from the environment if nothing configured them."""
    return _settings or configure(SpaceSettings.from_environment())


def _encoder_note() -> str:
    """What the CLIP tabs run on, told to the visitor."""
    settings = current_settings()
    weights = "random weights (a demonstration: the images mean nothing)"
    if settings.pretrained != "random":
        weights = f"the {Path(settings.pretrained).name} weights"
    # Either bank gives the full method: anchor start, Procrustes target, blending loss.
    bank = "its own anchor bank" if settings.bank else "the anchor bank shipped with hubmodels"
    return f"Runs on {settings.clip} with {weights} and {bank} (the full CLIP⁻¹ method)."


def _inverter(kind: str):
    """The shared inverter ("clip": text and images; "image": any image encoder), loaded once.

    A failure is remembered too, so every request says why at once instead of retrying a
    download that cannot succeed.
    """
    settings = current_settings()
    kind = _encoder_kind(kind, settings)
    if kind not in _inverters:
        try:
            _inverters[kind] = _load_inverter(kind, settings)
        except (CheckpointError, ValueError, OSError) as err:
            _inverters[kind] = f"{err}"
            logging.getLogger("hubmodels.space").warning(
                "CLIP tabs disabled: %s. %s", err, HOW_TO_CONFIGURE
            )
    found = _inverters[kind]
    if isinstance(found, str):
        raise UserError(
            "This Space cannot run CLIP⁻¹ right now: its encoder could not be loaded "
            f"({_first_sentence(found)}). Class sampling and the Energy explorer work offline."
        )
    return found


def _encoder_kind(kind: str, settings: SpaceSettings) -> str:
    """The ``_inverters`` entry a kind uses: without an image encoder, "image" is the CLIP one,
    so it is loaded (or fails) once, not once per tab."""
    return "clip" if kind == "image" and not settings.image_encoder else kind


def _first_sentence(text: str, limit: int = 160) -> str:
    """The gist of an error for a visitor; the whole of it goes to the server log."""
    first = text.strip().splitlines()[0] if text.strip() else "unknown reason"
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _load_inverter(kind: str, settings: SpaceSettings):
    from accelerate import PartialState

    from hubmodels import CLIPInverter

    device = PartialState().device
    resolution = settings.default_resolution
    if kind == "image" and settings.image_encoder:
        return CLIPInverter(
            settings.image_encoder,
            settings.image_encoder_weights,
            resolution=resolution,
            device=device,
        )
    # Random weights only on explicit request ("random"): their images mean nothing.
    if settings.bank:
        return CLIPInverter.from_pretrained(
            settings.bank, clip=settings.clip, pretrained=settings.pretrained, device=device
        )
    return CLIPInverter(settings.clip, settings.pretrained, resolution=resolution, device=device)


# ---------------------------------------------------------------------------- run-time estimate
# How long a CLIP tab's run takes, told beside its Steps slider. The estimate and its priors are
# ``hubmodels.inversion.run_time``'s; the Space adds which encoder each tab loads, the paces its
# runs measured (kept in a file) and the note's words.
# The encoder each tab loads by default (style transfer toward a text; an image style uses "image").
TASK_ENCODER = {"text_to_image": "clip", "reconstruct": "image", "style_transfer": "clip"}
DEVICE_NAMES = {"cuda": "the GPU", "cpu": "this CPU"}


def run_time_note(task: str, steps: float | None) -> str:
    """The Markdown beside a CLIP tab's Steps slider: how long a run of ``steps`` takes here."""
    settings = current_settings()
    kind = _encoder_kind(TASK_ENCODER[task], settings)
    if isinstance(_inverters.get(kind), str):
        return "This tab cannot run right now: its encoder could not be loaded."
    device, resolution = _device_type(), settings.default_resolution
    measured = _measured_pace(_pace_key(task, kind, settings))
    loaded = kind in _inverters
    try:
        seconds = run_time.estimate_seconds(
            task, steps, device, resolution, measured, encoder_loaded=loaded
        )
    except ValueError as err:
        return f"No run-time estimate: {err}."
    pace = measured or run_time.prior_pace(task, device, resolution)
    where = f"{int(steps)} step{'' if steps == 1 else 's'} on {DEVICE_NAMES[device]}"
    sources = _sources(task, device, pace, measured, loaded)
    return f"About {run_time.format_duration(seconds)} for {where} ({sources})."


def _sources(
    task: str, device: str, pace: run_time.Pace, measured: run_time.Pace | None, loaded: bool
) -> str:
    """Where an estimate comes from and what it includes besides the steps."""
    if measured:
        parts = ["measured on the last run"]
    elif device == "cuda":
        parts = ["a guess: no GPU run has been measured yet"]
    else:
        parts = ["estimate from our CPU benchmark"]
    if task == "style_transfer":
        parts.append(f"fitting the content image first, ~{run_time.format_duration(pace.setup_s)}")
    if not loaded:
        load = run_time.format_duration(run_time.load_seconds(device))
        parts.append(f"the first run also loads the encoder, ~{load}")
    return "; ".join(parts)


# Measured paces live in a file, not in module state: on ZeroGPU the tab functions run in a
# forked worker process, and what they set there never reaches the process that answers the
# slider. Keyed by what sets the pace, so other settings never read a stale one.
def _pace_file() -> Path:
    return Path(tempfile.gettempdir()) / "hubmodels-space" / "paces.json"


def _pace_key(task: str, kind: str, settings: SpaceSettings) -> str:
    encoder = settings.image_encoder if kind == "image" else settings.clip
    bank = f" + {settings.bank}" if settings.bank and kind == "clip" else ""
    return f"{task} | {_device_type()} | {settings.default_resolution} px | {encoder}{bank}"


def _measured_paces() -> dict[str, Any]:
    try:
        paces = json.loads(_pace_file().read_text())
    except (OSError, ValueError):  # none yet, or unreadable: the priors stand
        return {}
    return paces if isinstance(paces, dict) else {}


def _measured_pace(key: str) -> run_time.Pace | None:
    found = _measured_paces().get(key)
    try:
        pace = run_time.Pace(float(found["step_s"]), float(found["setup_s"]))
    except (KeyError, TypeError, ValueError):
        return None
    usable = all(math.isfinite(v) and v >= 0 for v in (pace.step_s, pace.setup_s))
    return pace if usable else None


def _record_pace(key: str, pace: run_time.Pace) -> None:
    """Keep ``pace`` for ``key``; a Space that cannot write its temp folder keeps its priors."""
    from hubmodels.images import write_bytes_atomically

    paces = _measured_paces()
    paces[key] = dataclasses.asdict(pace)
    try:
        write_bytes_atomically(_pace_file(), json.dumps(paces, indent=1).encode())
    except OSError as err:
        logging.getLogger("hubmodels.space").warning("run time not recorded: %s", err)


def _remember_pace(task: str, kind: str, steps: int, clock: run_time.RunClock) -> None:
    """Record the pace of a finished run, for the estimates that follow it."""
    settings = current_settings()
    key = _pace_key(task, _encoder_kind(kind, settings), settings)
    device, resolution = _device_type(), settings.default_resolution
    known = _measured_pace(key) or run_time.prior_pace(task, device, resolution)
    pace = run_time.pace_of_run(steps, clock.started, clock.first, clock.ended, known.setup_s)
    _record_pace(key, pace)


def _invert(
    kind: str, call: Callable, steps: float, seed: float, progress: gr.Progress | None = None
) -> Iterator[tuple]:
    """Stream one inverter task: previews, then the image, its settings and a PNG carrying them."""
    from hubmodels.images import ImageInputError, save_png, to_pil

    steps = _whole("Steps", steps, 1, run_time.MAX_STEPS)
    seed = _whole("Seed", seed, 0, 2**31 - 1)
    inverter = _inverter(kind)
    task = functools.partial(call, inverter, num_inference_steps=steps, seed=seed)
    clock = run_time.RunClock()  # times the run for the next estimate (``run_time_note``)
    try:
        for done, payload in _stream(lambda callback: clock.run(task, callback)):
            if not done:
                step, image, info = payload
                if progress is not None:
                    progress((step, steps), desc="inverting")
                yield to_pil(image)[0], f"Step {step} of {steps}: loss {info['loss']:.4f}", None
    except ImageInputError as err:
        raise UserError(str(err)) from err
    out = payload
    _remember_pace(out.settings["task"], kind, steps, clock)
    name = f"{out.settings['task']}-{seed}"
    path = save_png(out.images[0], _download_path(name, out.images[0]), out.settings)
    status = (
        f"Done in {steps} steps, seed {seed}, final loss {out.losses[-1]:.4f}; "
        f"encoder `{out.settings['encoder']}`."
    )
    yield out.images[0], status, str(path)


def _download_path(stem: str, image: Image.Image) -> Path:
    """Where a result's PNG goes: named by its request, kept apart by its pixels.

    Two visitors with the same preset and seed but other classes or prompts must not share a
    file (one would download the other's image); the same request gives the same pixels, so
    the name stays bounded by the distinct results.
    """
    import tempfile

    digest = hashlib.sha256(image.tobytes()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "hubmodels-space" / digest / f"{stem}.png"


def _on_gpu(duration: Callable[..., int]) -> Callable:
    """``@spaces.GPU(duration=...)`` on ZeroGPU Spaces (the ``spaces`` package), else nothing."""
    try:
        import spaces
    except ImportError:
        return lambda function: function
    return spaces.GPU(duration=duration)


def _gpu_seconds(steps_position: int, task: str = "text_to_image") -> Callable[..., int]:
    """ZeroGPU budget of a ``task`` run whose steps are argument ``steps_position``: the GPU
    prior of the run-time estimate (``run_time.prior_pace``), load included, capped at 300 s."""
    pace = run_time.prior_pace(task, "cuda", 224)

    def seconds(*args: Any, **kwargs: Any) -> int:
        steps = args[steps_position] if len(args) > steps_position else kwargs.get("steps")
        if not isinstance(steps, (int, float)) or not math.isfinite(steps):
            steps = 400
        return int(min(300, run_time.GPU_LOAD_S + pace.setup_s + steps * pace.step_s))

    return seconds


@_on_gpu(_gpu_seconds(2))
def text_to_image(
    prompt: str,
    negative: str,
    steps: float,
    seed: float,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 - gradio injects it by this default
) -> Iterator[tuple]:
    """The /text_to_image API: ``CLIPInverter.text_to_image``."""
    if not prompt or not prompt.strip():
        raise UserError("The prompt is empty: describe the image you want.")

    def call(inverter, **kw):
        return inverter.text_to_image(prompt, negative or None, **kw)

    yield from _invert("clip", call, steps, seed, progress)


@_on_gpu(_gpu_seconds(1, "reconstruct"))
def reconstruct(
    image: str | None,
    steps: float,
    seed: float,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 - gradio injects it by this default
) -> Iterator[tuple]:
    """The /reconstruct API: ``CLIPInverter.reconstruct`` of an uploaded image."""
    if not image:
        raise UserError("Upload an image to reconstruct.")
    yield from _invert(
        "image", lambda inverter, **kw: inverter.reconstruct(image, **kw), steps, seed, progress
    )


@_on_gpu(_gpu_seconds(3, "style_transfer"))
def style_transfer(
    content: str | None,
    style_text: str,
    style_image: str | None,
    steps: float,
    seed: float,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 - gradio injects it by this default
) -> Iterator[tuple]:
    """The /style_transfer API: ``CLIPInverter.style_transfer`` toward a text or an image."""
    if not content:
        raise UserError("Upload a content image.")
    if style_image:
        style, kind = style_image, "image"
    elif style_text and style_text.strip():
        style, kind = style_text, "clip"
    else:
        raise UserError("Give a style: a text such as 'an oil painting', or a style image.")
    call = lambda inverter, **kw: inverter.style_transfer(content, style, **kw)  # noqa: E731
    yield from _invert(kind, call, steps, seed, progress)


def _image_upload(**options: Any) -> gr.Image:
    """``gr.Image`` for uploads: a file that is not an image gets one sentence naming it, where
    gradio's own message would show the server's temporary path.

    The instance's ``preprocess`` is wrapped rather than subclassed: gradio writes a ``.pyi``
    stub beside the source file of every component subclass.
    """
    component = gr.Image(type="filepath", format="png", **options)
    preprocess = component.preprocess

    def readable(payload: Any) -> Any:
        try:
            return preprocess(payload)
        except (OSError, ValueError, SyntaxError) as err:  # PIL's UnidentifiedImageError too
            name = getattr(payload, "orig_name", None) or "the upload"
            raise UserError(f"{name} is not an image this Space can read") from err

    component.preprocess = readable
    return component


def _image_output(value: Any = None, **options: Any) -> gr.Image:
    """``gr.Image`` for results, whose PIL images reach the browser as complete PNG files.

    gradio names a PIL result's file by its content and rewrites that file in place on every
    result, so when two visitors get the same image (the same default request) one of them
    can be sent a half-written file (the load benchmark saw 5 of 100 fail this way). Here the
    file is written once, under a temporary name and renamed into place, before gradio sees it.
    """
    from hubmodels.images import write_bytes_atomically

    component = gr.Image(value, type="pil", format="png", **options)
    postprocess = component.postprocess

    def complete_file(value: Any) -> Any:
        if isinstance(value, Image.Image):
            buffer = io.BytesIO()
            value.save(buffer, format="PNG")
            data = buffer.getvalue()
            path = Path(component.GRADIO_CACHE) / hashlib.sha256(data).hexdigest() / "image.png"
            if not path.exists():  # the same bytes: never rewritten while it may be served
                write_bytes_atomically(path, data)
            value = str(path)
        return postprocess(value)

    component.postprocess = complete_file
    return component


def _example_photo() -> str:
    """A photo every install has: matplotlib's sample Grace Hopper portrait."""
    import matplotlib.cbook

    return str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def _seed_and_steps(task: str) -> tuple:
    """The Steps slider with the run's estimated time beside it, then the seed.

    The estimate follows the slider (its ``change``) and is worked out again at each page load
    (``gr.on`` without triggers listens to both), so a visitor arriving after a run sees the
    pace it measured.
    """
    default = current_settings().default_steps
    with gr.Row():
        steps = gr.Slider(1, 1000, value=default, step=1, label="Steps")
        note = gr.Markdown(run_time_note(task, default))
    gr.on(
        None,  # steps.change and the page's load
        functools.partial(run_time_note, task),
        inputs=steps,
        outputs=note,
        queue=False,  # instant, even while the heavy jobs hold the queue
        api_name=False,
        show_progress="hidden",
    )
    return steps, _seed_input()


def _results() -> list:
    with gr.Column(scale=2):
        image = _image_output(label="Image (previews while it forms)")
        status = gr.Markdown()
        download = gr.File(label="PNG with its settings in the metadata")
    return [image, status, download]


def _wire(button, function, inputs, outputs, api_name: str) -> None:
    """Run ``function`` on click, two at a time across the Space, under ``api_name``.

    The click first clears the outputs (at once, outside the queue), so a run that fails never
    leaves the previous result on screen as if it were the answer.
    """
    button.click(lambda: [None] * len(outputs), outputs=outputs, queue=False, api_name=False)
    button.click(
        function,
        inputs=inputs,
        outputs=outputs,
        api_name=api_name,
        concurrency_id="heavy",
        concurrency_limit=HEAVY_CONCURRENCY,
    )


def text_to_image_tab() -> None:
    gr.Markdown(f"A frozen CLIP as a decoder (CLIP⁻¹). {_encoder_note()}")
    with gr.Row():
        with gr.Column(scale=1):
            prompt = gr.Textbox(label="Prompt", placeholder="a lighthouse at dusk")
            negative = gr.Textbox(label="Negative prompt", placeholder="blurry")
            steps, seed = _seed_and_steps("text_to_image")
            run = gr.Button("Generate", variant="primary")
        outputs = _results()
    gr.Examples(
        [["a lighthouse at dusk", "blurry"], ["a red fox in the snow, oil painting", ""]],
        inputs=[prompt, negative],
        label="Examples (they fill the prompt; press Generate)",
    )
    _wire(run, text_to_image, [prompt, negative, steps, seed], outputs, "text_to_image")


def reconstruction_tab() -> None:
    gr.Markdown(f"An image rendered from its embedding alone. {_encoder_note()}")
    with gr.Row():
        with gr.Column(scale=1):
            image = _image_upload(label="Image")
            steps, seed = _seed_and_steps("reconstruct")
            run = gr.Button("Reconstruct", variant="primary")
        outputs = _results()
    gr.Examples([[_example_photo()]], inputs=[image], label="Example (fills the upload)")
    _wire(run, reconstruct, [image, steps, seed], outputs, "reconstruct")


def style_transfer_tab() -> None:
    gr.Markdown(f"Keep the layout, move the look. {_encoder_note()}")
    with gr.Row():
        with gr.Column(scale=1):
            content = _image_upload(label="Content image")
            style_text = gr.Textbox(label="Style as text", placeholder="an oil painting")
            style_image = _image_upload(label="...or a style image")
            steps, seed = _seed_and_steps("style_transfer")
            run = gr.Button("Transfer", variant="primary")
        outputs = _results()
    gr.Examples(
        [[_example_photo(), "an oil painting"], [_example_photo(), "a pencil sketch"]],
        inputs=[content, style_text],
        label="Examples (they fill the inputs)",
    )
    _wire(
        run,
        style_transfer,
        [content, style_text, style_image, steps, seed],
        outputs,
        "style_transfer",
    )


# ---------------------------------------------------------------------------- the app
# The queue is sized by the wait it asks of a visitor, not by a round number: with two heavy jobs
# at a time, a default class-sampling request holds a worker for about 3.7 s on two CPU cores
# under full load (bench/space_load.py: 20 requests in 37.2 s), so 163 waiting jobs clear
# within MAX_WAIT_S. Only a visitor whose wait would
# pass that is told the Space is busy. Gradio shows every waiting visitor their place in the
# queue and an estimate; a waiting job holds only its small inputs, so memory stays bounded by
# the two running ones.
HEAVY_CONCURRENCY = 2
MAX_WAIT_S = 300
TYPICAL_JOB_S = 3.7
QUEUE_SIZE = math.ceil(HEAVY_CONCURRENCY * MAX_WAIT_S / TYPICAL_JOB_S)
MAX_UPLOAD = "25mb"  # a photo, not an archive; larger images are downscaled anyway
# show_error: an upload gradio itself cannot decode then says so, instead of a bare failure;
# bigger uploads than MAX_UPLOAD are refused with gradio's own message.
LAUNCH_OPTIONS = dict(show_error=True, max_file_size=MAX_UPLOAD)
# (tab label, function that builds it): a new tab is one function and one line here.
# The tabs that work offline on the embedded presets come first: every visitor can use them.
TABS: list[tuple[str, Callable[[], None]]] = [
    ("Class sampling", sampling_tab),
    ("Energy explorer", explorer_tab),
    ("Text-to-image", text_to_image_tab),
    ("Reconstruction", reconstruction_tab),
    ("Style transfer", style_transfer_tab),
    ("Models", models_tab),
]


def build_demo(settings: SpaceSettings | None = None) -> gr.Blocks:
    """Lay out every tab for ``settings`` (default: the environment's); nothing is launched and
    no model is built."""
    configure(settings or SpaceSettings.from_environment())
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(INTRO)
        for label, build_tab in TABS:
            with gr.Tab(label):
                build_tab()
    return demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Flags over the environment, read once: ``host``, ``port`` and ``settings``."""
    environment = SpaceSettings.from_environment()
    parser = argparse.ArgumentParser(description="Run the hubmodels Space locally.")
    parser.add_argument(
        "--host",
        default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        help="interface to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        help="port (default: $GRADIO_SERVER_PORT or 7860)",
    )
    flags = (
        ("--clip", "clip", ENV_CLIP, "open_clip model for the CLIP tabs"),
        ("--pretrained", "pretrained", ENV_PRETRAINED, "its weights: a tag, a file or random"),
        ("--bank", "bank", ENV_BANK, "a saved CLIPInverter with its anchor bank"),
        ("--image-encoder", "image_encoder", ENV_IMAGE_ENCODER, "e.g. timm:efficientnet_lite0"),
        ("--image-encoder-weights", "image_encoder_weights", ENV_IMAGE_WEIGHTS, "its weights"),
    )
    for flag, field_name, variable, what in flags:
        default = getattr(environment, field_name)
        shown = default or "none"
        parser.add_argument(
            flag, dest=field_name, default=default, help=f"{what} (${variable}: {shown})"
        )
    args = parser.parse_args(argv)
    args.settings = dataclasses.replace(
        environment, **{name: getattr(args, name) for _, name, _, _ in flags}
    )
    return args


def serve_in_background(
    settings: SpaceSettings | None = None, queue_size: int = QUEUE_SIZE, **launch: Any
) -> tuple[gr.Blocks, str]:
    """The demo as ``main`` serves it, on a free local port, without blocking: (demo, url).

    For tests, benchmarks and screenshots; ``launch`` overrides ``LAUNCH_OPTIONS``, and
    ``demo.close()`` stops the server.
    """
    demo = build_demo(settings)
    demo.queue(max_size=queue_size)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _, url, _ = demo.launch(
        prevent_thread_lock=True,
        server_name="127.0.0.1",
        server_port=port,
        quiet=True,
        **{**LAUNCH_OPTIONS, **launch},
    )
    return demo, url


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    demo = build_demo(args.settings)
    # A bounded queue: two jobs run at a time; a visitor is told "busy" only when their wait
    # would pass MAX_WAIT_S.
    demo.queue(max_size=QUEUE_SIZE)
    demo.launch(
        server_name=args.host, server_port=args.port, theme=gr.themes.Soft(), **LAUNCH_OPTIONS
    )


if __name__ == "__main__":
    main()
