"""The hubmodels Space: discriminative models that generate images, in the browser.

Robust classifiers read as energy-based models (WEAT, DER) and a frozen CLIP used as a decoder
(CLIP^-1). Each tab is one small function that lays out its components and wires them to one
package call; no model code lives here (design.md 2). Tabs so far:

* **Models**: the embedded presets with their threat model and measured accuracies, and for the
  one picked, its model card and delta-energy training plot.

Start-up only reads small files (config.json, README.md); models are built when a tab needs one.

Run locally with ``python app.py [--host 0.0.0.0] [--port 7860]``; on Hugging Face Spaces the
platform sets GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, which are the defaults here.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import gradio as gr
from PIL import Image

from hubmodels import CheckpointError
from hubmodels import presets_catalog as catalog

TITLE = "hubmodels: discriminative models that generate images"
INTRO = (
    "# hubmodels\n"
    "Robust classifiers are energy-based models: E(x) = -logsumexp f(x). "
    "This Space shows the checkpoints that ship with "
    "[hubmodels](https://github.com/hubmodels/hubmodels); load any of them offline with "
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
        raise gr.Error(str(err)) from err  # shown in the UI and raised by gradio_client
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
        wrap=True,
        label="Installed presets",
        visible=bool(names),
    )
    first = names[0] if names else None
    card, plot = show_model(first) if first else ("", None)
    choice = gr.Dropdown(choices=names, value=first, label="Model", visible=bool(names))
    with gr.Row(visible=bool(names)):
        card_md = gr.Markdown(card, label="Model card", container=True, scale=3)
        plot_img = gr.Image(
            plot,
            label="Training: delta energy and PGD validation error",
            type="pil",
            format="png",
            interactive=False,
            scale=2,
        )
    choice.change(show_model, inputs=choice, outputs=[card_md, plot_img], api_name="model_card")


# ---------------------------------------------------------------------------- the app
# (tab label, function that builds it): a new tab is one function and one line here.
TABS: list[tuple[str, Callable[[], None]]] = [
    ("Models", models_tab),
]


def build_demo() -> gr.Blocks:
    """Lay out every tab; nothing is launched and no model is built."""
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(INTRO)
        for label, build_tab in TABS:
            with gr.Tab(label):
                build_tab()
    return demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    demo = build_demo()
    # A bounded queue: a CPU Space serves a few users at a time; the rest get a clear "busy".
    demo.queue(max_size=16)
    demo.launch(server_name=args.host, server_port=args.port, theme=gr.themes.Soft())


if __name__ == "__main__":
    main()
