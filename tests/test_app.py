"""The Space: the preset catalog behind its Models tab, and the app served and called over HTTP.

Presets are built in a temp folder from a tiny classifier and registered by monkeypatching the
registry, so these tests do not depend on which presets the package ships.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import fresh_app as _load_app
from conftest import tiny_classifier
from hubmodels import CheckpointError, hub
from hubmodels import presets_catalog as catalog
from hubmodels.inversion import run_time

# gradio's queue calls pandas APIs that pandas 3 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")

TEST_METRICS = {"test": "toy test set, first 100 images", "clean_acc": 0.9123, "pgd20_acc": 0.7}
VAL_METRICS = {"split": "toy validation", "epoch": 4, "val_clean_acc": 0.88, "val_pgd_acc": 0.61}


@pytest.fixture
def presets(monkeypatch, tmp_path):
    """Three installed presets (test numbers + plot, validation numbers, none) and one missing."""
    monkeypatch.setattr(hub, "PRESETS_DIR", tmp_path)
    registry = {}
    for name, metrics in [("toy-tested", TEST_METRICS), ("toy-val", VAL_METRICS), ("toy-bare", {})]:
        tiny_classifier(metrics=metrics).save_pretrained(tmp_path / name)
        registry[name] = hub.Preset(name=name, folder=name, summary=f"{name} for tests")
    registry["toy-missing"] = hub.Preset(name="toy-missing", folder="nowhere", summary="absent")
    Image.new("RGB", (40, 20), (200, 30, 30)).save(tmp_path / "toy-tested" / catalog.PLOT_NAME)
    monkeypatch.setattr(hub, "PRESETS", registry)
    return tmp_path


def _row(name: str) -> dict[str, str]:
    return dict(zip(catalog.COLUMNS, catalog.preset_row(name), strict=True))


# ---------------------------------------------------------------------------- catalog
def test_rows_list_installed_presets_only(presets):
    assert [row[0] for row in catalog.preset_rows()] == ["toy-bare", "toy-tested", "toy-val"]
    assert catalog.missing_presets() == ["toy-missing"]


def test_row_shows_recipe_threat_model_and_test_numbers(presets):
    row = _row("toy-tested")
    assert row["architecture"] == "small_cnn"
    assert row["dataset"] == "toy"
    assert row["method"] == "trades"
    assert row["threat model"] == "linf 0.1"
    assert row["clean acc"] == "91.23%"
    assert row["PGD-20 acc"] == "70.00%"
    assert row["AutoAttack acc"] == catalog.NOT_MEASURED
    assert row["measured on"] == TEST_METRICS["test"]


def test_row_falls_back_to_validation_numbers_and_says_so(presets):
    row = _row("toy-val")
    assert (row["clean acc"], row["PGD-20 acc"]) == ("88.00%", "61.00%")
    assert row["AutoAttack acc"] == catalog.NOT_MEASURED
    assert row["measured on"] == "toy validation, epoch 4"


def test_a_preset_with_a_corrupt_config_gets_a_row_that_says_so(presets):
    (presets / "toy-val" / "config.json").write_text("{broken")
    row = _row("toy-val")
    assert row["measured on"].startswith("unreadable:") and "JSON" in row["measured on"]
    assert len(catalog.preset_rows()) == 3  # the others are still listed
    _load_app().build_demo()  # and the Space still starts


def test_row_without_metrics_says_not_measured(presets):
    row = _row("toy-bare")
    assert [row[c] for c in ("clean acc", "PGD-20 acc", "AutoAttack acc")] == [
        catalog.NOT_MEASURED
    ] * 3


@pytest.mark.parametrize(
    ("threat", "text"),
    [
        ({"norm": "linf", "epsilon": 8 / 255}, "linf 0.03137 (8/255)"),
        ({"norm": "l2", "epsilon": 0.5}, "l2 0.5"),
        ({}, "none"),
        (None, "none"),
    ],
)
def test_threat_model_text(threat, text):
    assert catalog.threat_model_text(threat) == text


def test_model_card_has_no_front_matter(presets):
    raw = (presets / "toy-tested" / hub.CARD_NAME).read_text()
    assert raw.startswith("---")  # the file itself keeps its Hub metadata
    card = catalog.model_card_markdown("toy-tested")
    assert card.startswith("# small_cnn on toy, trained with trades")
    assert "library_name:" not in card and "---\n" not in card.split("## Model")[0]
    assert "0.9123" in card


def test_strip_front_matter_leaves_plain_markdown_alone():
    assert catalog.strip_front_matter("# Title\n\n---\nrule\n") == "# Title\n\n---\nrule"
    assert catalog.strip_front_matter("---\na: 1\n---\n\n# T\n") == "# T"


def test_training_plot_only_when_present(presets):
    assert catalog.training_plot_path("toy-tested") == presets / "toy-tested" / "training.png"
    assert catalog.training_plot_path("toy-val") is None


@pytest.mark.parametrize(
    ("name", "match"),
    [("no-such-model", "is unknown"), ("toy-missing", "registered but its files are missing")],
)
def test_unknown_or_missing_preset_is_a_clear_error(presets, name, match):
    with pytest.raises(CheckpointError, match=rf"{match}; installed presets: toy-bare, toy-tested"):
        catalog.model_card_markdown(name)


def test_empty_registry_builds_and_says_so(monkeypatch):
    app = _load_app()
    monkeypatch.setattr(hub, "PRESETS", {})
    assert catalog.preset_rows() == []
    demo = app.build_demo()
    texts = [b.value for b in demo.blocks.values() if type(b).__name__ == "Markdown"]
    assert app.NO_PRESETS in texts


# ---------------------------------------------------------------------------- served app
@contextlib.contextmanager
def _served(app, downloads, **serve):
    """The app's demo served as ``python app.py`` serves it, and a gradio_client talking to it."""
    from gradio_client import Client

    demo, url = app.serve_in_background(**serve)
    try:
        yield Client(url, verbose=False, analytics_enabled=False, download_files=str(downloads))
    finally:
        demo.close()


def test_model_card_endpoint_over_http(presets, tmp_path_factory):
    app = _load_app()
    with _served(app, tmp_path_factory.mktemp("downloads")) as client:
        card, plot = client.predict("toy-tested", api_name="/model_card")
        assert card == catalog.model_card_markdown("toy-tested")
        assert Image.open(plot).size == (40, 20)
        card, plot = client.predict("toy-val", api_name="/model_card")
        assert card.startswith("# small_cnn on toy") and plot is None


def test_a_result_image_file_is_written_once_and_whole():
    """Two visitors with the same result share one file that is never rewritten under them."""
    import gradio as gr

    app = _load_app()
    with gr.Blocks():
        component = app._image_output(show_label=False)
    image = Image.new("L", (12, 10), 77)
    first = component.postprocess(image).path
    inode = Path(first).stat().st_ino
    second = component.postprocess(image.copy()).path
    assert second == first and Path(second).stat().st_ino == inode
    with Image.open(first) as read_back:
        assert read_back.size == (12, 10) and read_back.getpixel((3, 3)) == 77
    assert component.postprocess(Image.new("L", (12, 10), 78)).path != first
    assert component.postprocess(None) is None


def test_downloads_of_different_results_never_share_a_file():
    app = _load_app()
    a = app._download_path("samples-der-0", Image.new("L", (4, 4), 1))
    b = app._download_path("samples-der-0", Image.new("L", (4, 4), 2))
    assert a != b and a.name == b.name == "samples-der-0.png"
    assert app._download_path("samples-der-0", Image.new("L", (4, 4), 1)) == a


# ---------------------------------------------------------------------------- class sampling
def test_class_sampling_streams_previews_then_the_grid():
    app = _load_app()
    updates = list(
        app.sample_classes(
            "fmnist-smallcnn-der", ["Sneaker", "Bag"], 3, "local_pca", True, False, 10, 0
        )
    )
    assert len(updates) >= 3  # previews every 5 steps, then the final grid
    grid, status, png = updates[-1]
    scale, side = app.GRID_SCALE, 28 + 2
    assert grid.size == ((3 * side + 2) * scale, (2 * side + 2) * scale)  # 3 per row, 2 classes
    assert "6 samples" in status and "Sneaker, Bag" in status and "seed 0" in status
    assert "energy guidance on, adaptive stop off, 10 steps each" in status
    assert all(text.startswith("Sampling: step") for _, text, _ in updates[:-1])
    from hubmodels.images import read_png_settings

    settings = read_png_settings(png)
    assert settings["classes"] == ["Sneaker", "Bag"] and settings["seed"] == 0
    assert settings["init"] == "local_pca" and settings["steps"] == 10


@pytest.mark.slow
def test_class_sampling_shows_each_sample_over_its_nearest_training_image():
    """With the data installed (CI installs it), a visitor sees the samples are new."""
    app = _load_app()
    *_, (grid, status, _) = app.sample_classes(
        "fmnist-smallcnn-der", ["Sneaker", "Bag"], 3, "local_pca", False, False, 20, 0, True
    )
    scale, side = app.GRID_SCALE, 28 + 2
    assert grid.size == ((3 * side + 2) * scale, (4 * side + 2) * scale)  # 2 rows a class
    ratio = float(status.split("Copy ratio ")[1].split(" ")[0])
    assert ratio >= 0.8 and "new images" in status


def test_class_sampling_without_the_training_set_says_so_and_still_samples(monkeypatch):
    app = _load_app()

    def missing(dataset):
        raise FileNotFoundError("Fashion-MNIST not found in /usr/share/datasets/fashion-mnist")

    monkeypatch.setattr(app, "_training_set", missing)
    *_, (grid, status, _) = app.sample_classes(
        "fmnist-smallcnn-der", ["Bag"], 2, "local_pca", False, False, 3, 0, True
    )
    assert "2 samples" in status and "not shown" in status and "not on this server" in status
    assert grid.size[1] == (28 + 4) * app.GRID_SCALE  # the samples alone


def test_class_sampling_with_no_class_picked_is_an_error_not_every_class():
    import gradio as gr

    app = _load_app()
    with pytest.raises(gr.Error, match="pick at least one class"):
        list(app.sample_classes("fmnist-smallcnn-der", [], 2, "pca", False, False, 5, 0))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("fmnist-smallcnn-der", [], 0, "pca", True, False, 10, 0), "Samples per class"),
        (("fmnist-smallcnn-der", [], 2, "pca", True, False, float("nan"), 0), "Steps"),
        (("fmnist-smallcnn-der", [], 2, "pca", True, False, 10**6, 0), "Steps"),
        (("fmnist-smallcnn-der", ["Unicorn"], 2, "pca", True, False, 5, 0), "unknown class"),
        (("no-such-model", [], 2, "pca", True, False, 5, 0), "unknown model"),
    ],
)
def test_class_sampling_bad_input_is_a_gradio_error(args, match):
    import gradio as gr

    app = _load_app()
    with pytest.raises(gr.Error, match=match):
        list(app.sample_classes(*args))


def test_class_sampling_endpoint_over_http(tmp_path_factory):
    app = _load_app()
    with _served(app, tmp_path_factory.mktemp("downloads"), queue_size=4) as client:
        args = ("fmnist-smallcnn-der", ["T-shirt/top"], 2, "pca", True, True, 5, 7)
        grid, status, png = client.predict(*args, api_name="/class_sampling")
        assert Image.open(png).size == Image.open(grid).size
        assert Image.open(grid).size[1] == (28 + 4) * app.GRID_SCALE  # one row
        assert "2 samples" in status
        # gradio's slider bounds answer first over HTTP; the function checks them again in-process
        with pytest.raises(Exception, match="less than minimum value 1"):
            client.predict(
                "fmnist-smallcnn-der", [], 0, "pca", True, True, 5, 7, api_name="/class_sampling"
            )
        grid, _, _ = client.predict(*args, api_name="/class_sampling")  # still serving
        assert Image.open(grid).size[1] == (28 + 4) * app.GRID_SCALE


# ---------------------------------------------------------------------------- energy explorer
EXPLORE = ("fmnist-smallcnn-standard", "fmnist-smallcnn-weat")


@pytest.mark.parametrize("source", ["Test image", "Class sample"])
def test_explorer_reports_both_models_energies_and_verdicts(source):
    app = _load_app()
    picture, figure, report = app.explore_energies(*EXPLORE, source, "Sneaker", 3)
    assert picture.size == (28 * app.EXPLORER_SCALE,) * 2  # one image, no frame
    assert figure.size[1] > figure.size[0] / 2  # a row per model
    for name in EXPLORE:
        row = next(line for line in report.splitlines() if line.startswith(f"| `{name}`"))
        assert "Sneaker" in row and ("**in**" in row or "**out of distribution**" in row)
    origin = "test image" if source == "Test image" else "a Sneaker sample"
    assert origin in report


def test_explorer_flags_noise_and_explains_an_upload(tmp_path):
    app = _load_app()
    noise = Image.fromarray(
        (torch.rand(64, 64, 3, generator=torch.Generator().manual_seed(0)) * 255).byte().numpy()
    )
    path = tmp_path / "noise.png"
    noise.save(path)
    _, _, report = app.explore_energies(*EXPLORE, "Upload", "Bag", 0, str(path))
    assert "your upload: 64×64 upload, grey (luma), resized to 28×28" in report
    assert report.count("**out of distribution**") >= 1


@pytest.mark.slow
def test_explorer_attack_streams_steps_and_contrasts_the_models():
    app = _load_app()
    updates = list(
        app.attack_energies(*EXPLORE, "Test image", "Trouser", 0, None, False, None, 0.1, 6)
    )
    assert len(updates) == 2 * 7 + 1  # every step of both models (step 0 too), then the summary
    assert all(status.startswith("Attacking") for _, _, status in updates[:-1])
    picture, shifts, summary = updates[-1]
    assert picture.size[0] > 4 * picture.size[1]  # input, then two tiles per model
    standard, robust = summary.splitlines()[1:]
    assert "prediction Trouser →" in standard and "prediction stays Trouser" in robust
    assert shifts.size[0] > shifts.size[1]


@pytest.mark.slow
def test_explorer_targeted_attack_names_its_target():
    app = _load_app()
    *_, (_, _, summary) = app.attack_energies(
        *EXPLORE, "Test image", "Bag", 1, None, True, "Sandal", 0.2, 10
    )
    assert "targeted at Sandal" in summary and "→ Sandal" in summary.splitlines()[1]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"source": "Upload"}, "upload an image first"),
        ({"class_name": "Unicorn"}, "pick a class"),
        ({"preset_b": "no-such-model"}, "unknown model"),
        ({"index": 1.5}, "whole number"),
        ({"targeted": True, "target": None}, "pick a target class"),
        ({"targeted": True, "target": "Bag"}, "must differ"),
        ({"epsilon": 0.0}, "ε must be in"),
        ({"steps": 10**4}, "Steps must be between"),
    ],
)
def test_explorer_bad_input_is_a_gradio_error(change, match):
    import gradio as gr

    app = _load_app()
    args = dict(
        preset_a=EXPLORE[0],
        preset_b=EXPLORE[1],
        source="Test image",
        class_name="Bag",
        index=0,
        upload=None,
        targeted=False,
        target=None,
        epsilon=0.1,
        steps=3,
    )
    args.update(change)
    with pytest.raises(gr.Error, match=match):
        list(app.attack_energies(*args.values()))


def test_explorer_upload_that_is_not_an_image_is_a_clear_error_without_paths(tmp_path):
    import gradio as gr

    app = _load_app()
    fake = tmp_path / "holiday.png"
    fake.write_bytes(b"%PDF-1.4 definitely not a png")
    with pytest.raises(
        gr.Error, match="cannot be used: holiday.png is not a readable image"
    ) as err:
        app.explore_energies(*EXPLORE, "Upload", "Bag", 0, str(fake))
    assert str(tmp_path) not in str(err.value)


def test_explorer_without_the_test_set_says_what_to_pick(monkeypatch):
    import gradio as gr

    app = _load_app()

    def missing(dataset):
        raise FileNotFoundError("Fashion-MNIST not found in /usr/share/datasets/fashion-mnist")

    monkeypatch.setattr(app, "_test_set", missing)
    with pytest.raises(gr.Error, match="not on this server.*pick Class sample or Upload"):
        app.explore_energies(*EXPLORE, "Test image", "Bag", 0)
    _, _, report = app.explore_energies(*EXPLORE, "Class sample", "Bag", 0)  # still works
    assert "a Bag sample" in report


@pytest.mark.slow
def test_explorer_endpoints_over_http(tmp_path_factory, tmp_path):
    from gradio_client import handle_file

    app = _load_app()
    with _served(app, tmp_path_factory.mktemp("downloads"), queue_size=4) as client:
        picture, figure, report = client.predict(
            *EXPLORE, "Test image", "Coat", 2, None, api_name="/energy_report"
        )
        assert Image.open(picture).size == (28 * app.EXPLORER_SCALE,) * 2
        assert "| `fmnist-smallcnn-weat` | " in report
        job = client.submit(
            *EXPLORE,
            "Test image",
            "Coat",
            2,
            None,
            False,
            None,
            0.1,
            3,
            api_name="/energy_attack",
        )
        job.result()
        outputs = job.outputs()
        assert len(outputs) == 2 * 4 + 1 and "PGD (untargeted" in outputs[-1][2]
        fake = tmp_path / "x.png"
        fake.write_text("text")
        with pytest.raises(Exception, match="not a readable image"):
            client.predict(
                *EXPLORE, "Upload", "Coat", 0, handle_file(str(fake)), api_name="/energy_report"
            )
        _, _, report = client.predict(  # still serving
            *EXPLORE, "Class sample", "Coat", 0, None, api_name="/energy_report"
        )
        assert "a Coat sample" in report


def test_a_visitors_mistake_is_not_logged_as_a_traceback(capfd, tmp_path_factory):
    app = _load_app()
    with _served(app, tmp_path_factory.mktemp("downloads"), queue_size=4) as client:
        capfd.readouterr()
        with pytest.raises(Exception, match="upload an image first"):
            client.predict(*EXPLORE, "Upload", "Coat", 0, None, api_name="/energy_report")
        logged = capfd.readouterr()
    assert "Traceback" not in logged.err + logged.out


# ---------------------------------------------------------------------------- CLIP^-1 tabs
@pytest.fixture
def clip_env(monkeypatch, tiny_clip):
    """The tiny random CLIP, configured the way a Space owner configures a real one."""
    monkeypatch.setenv("HUBMODELS_CLIP", tiny_clip)
    monkeypatch.setenv("HUBMODELS_CLIP_PRETRAINED", "random")
    monkeypatch.setenv("HUBMODELS_RESOLUTION", "32")
    monkeypatch.delenv("HUBMODELS_BANK", raising=False)
    monkeypatch.delenv("HUBMODELS_IMAGE_ENCODER", raising=False)
    return tiny_clip


def _photo(path: Path) -> str:
    Image.new("RGB", (48, 40), (200, 120, 30)).save(path)
    return str(path)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_text_to_image_streams_then_returns_a_png_with_settings(clip_env):
    from hubmodels.images import read_png_settings

    app = _load_app()
    updates = list(app.text_to_image("a red boat", "blurry", 12, 3))
    assert [u[1].split(":")[0] for u in updates[:-1]] == ["Step 10 of 12", "Step 12 of 12"]
    image, status, path = updates[-1]
    assert image.size == (32, 32) and "seed 3" in status
    settings = read_png_settings(path)
    assert settings["prompt"] == "a red boat" and settings["negative_prompt"] == "blurry"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_style_transfer_and_reconstruction_run(clip_env, tmp_path):
    app = _load_app()
    photo = _photo(tmp_path / "content.png")
    *_, (image, status, _) = app.style_transfer(photo, "an oil painting", None, 3, 0)
    assert image.size == (32, 32)
    *_, (image, status, _) = app.reconstruct(photo, 3, 0)
    assert image.size == (32, 32) and "Done in 3 steps" in status


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda app, p: app.text_to_image("   ", "", 3, 0), "prompt is empty"),
        (lambda app, p: app.text_to_image("a cat", "", float("nan"), 0), "Steps"),
        (lambda app, p: app.reconstruct(None, 3, 0), "Upload an image"),
        (lambda app, p: app.reconstruct(p, 3, 0), "not a readable image"),
        (lambda app, p: app.style_transfer(p, "", None, 3, 0), "Give a style"),
    ],
)
def test_clip_tab_bad_input_is_a_gradio_error_and_the_next_call_works(
    clip_env, tmp_path, call, match
):
    import gradio as gr

    app = _load_app()
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    with pytest.raises(gr.Error, match=match):
        list(call(app, str(corrupt)))
    *_, (image, _, _) = app.text_to_image("a cat", "", 2, 0)
    assert image.size == (32, 32)


def test_without_clip_weights_the_tabs_say_why_and_sampling_still_works(monkeypatch):
    import gradio as gr

    monkeypatch.setenv("HUBMODELS_CLIP", "ViT-B-32")
    monkeypatch.delenv("HUBMODELS_CLIP_PRETRAINED", raising=False)  # "openai": needs a download
    app = _load_app()
    calls = []
    real_load = app._load_inverter
    monkeypatch.setattr(
        app,
        "_load_inverter",
        lambda kind, settings: calls.append(kind) or real_load(kind, settings),
    )
    with pytest.raises(gr.Error, match="cannot run CLIP⁻¹ right now") as err:
        list(app.text_to_image("a cat", "", 2, 0))
    message = str(err.value)
    assert "`" not in message and "HUBMODELS_" not in message  # for the visitor, not the operator
    assert "work offline" in message and len(message) < 400
    photo = app._example_photo()
    with pytest.raises(gr.Error, match="cannot run CLIP⁻¹ right now"):
        list(app.reconstruct(photo, 2, 0))  # the same failure, remembered: no second load
    assert calls == ["clip"]
    *_, (grid, status, _) = app.sample_classes(
        "fmnist-smallcnn-der", ["Bag"], 1, "pca", True, True, 2, 0
    )
    assert "**1 sample**" in status


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_text_to_image_endpoint_over_http(clip_env, tmp_path_factory):
    app = _load_app()
    with _served(app, tmp_path_factory.mktemp("downloads"), queue_size=4) as client:
        image, status, png = client.predict("a lighthouse", "", 3, 5, api_name="/text_to_image")
        assert Image.open(image).size == (32, 32) and "seed 5" in status
        assert Image.open(png).size == (32, 32)
        with pytest.raises(Exception, match="prompt is empty"):
            client.predict("", "", 3, 5, api_name="/text_to_image")


def test_flags_override_the_environment_once_and_write_nothing_back(monkeypatch):
    app = _load_app()
    monkeypatch.setenv("HUBMODELS_CLIP_PRETRAINED", "/env/clip.safetensors")
    monkeypatch.setenv("HUBMODELS_STEPS", "12")
    monkeypatch.delenv("HUBMODELS_BANK", raising=False)
    args = app.parse_args(["--clip", "ViT-B-16", "--port", "7000"])
    assert args.settings == app.SpaceSettings(
        clip="ViT-B-16", pretrained="/env/clip.safetensors", steps=12
    )
    assert args.port == 7000 and app.os.environ.get("HUBMODELS_CLIP") != "ViT-B-16"
    with pytest.raises(dataclasses.FrozenInstanceError):
        args.settings.clip = "RN50"


def test_importing_the_app_starts_nothing():
    """No server, no thread, no model, no configuration read: only definitions."""
    import subprocess
    import sys

    probe = (
        "import threading, app; "
        "print(threading.active_count(), app._settings is None, app._inverters == {})"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["1", "True", "True"]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_space_builds_from_python_with_its_settings(tiny_clip):
    """``import app`` starts nothing; ``build_demo(settings)`` configures the tabs."""
    app = _load_app()
    settings = app.SpaceSettings(clip=tiny_clip, pretrained="random", resolution=32, steps=7)
    demo = app.build_demo(settings)
    assert app.current_settings() is settings
    sliders = [b for b in demo.blocks.values() if type(b).__name__ == "Slider"]
    assert any(s.label == "Steps" and s.value == 7 for s in sliders)
    notes = [b.value for b in demo.blocks.values() if type(b).__name__ == "Markdown"]
    assert any("with random weights" in str(n) for n in notes)
    *_, (image, _, _) = app.text_to_image("a boat", "", 2, 0)
    assert image.size == (32, 32)
    app.configure(dataclasses.replace(settings, resolution=16))  # new settings, new encoder
    *_, (image, _, _) = app.text_to_image("a boat", "", 2, 0)
    assert image.size == (16, 16)


def test_zerogpu_duration_grows_with_steps_and_is_capped():
    app = _load_app()
    text_budget = app._gpu_seconds(2)  # text_to_image(prompt, negative, steps, seed, progress)
    assert text_budget("a cat", "", 400, 0, None) == 36
    assert text_budget("a cat", "", 10**6, 0, None) == 300
    assert text_budget("a cat", "", float("nan"), 0) == 36
    assert app._gpu_seconds(1)(steps=100) == 24
    style_budget = app._gpu_seconds(3, "style_transfer")  # (content, text, image, steps, ...)
    assert style_budget("photo.png", "an oil painting", None, 400, 0) == 36 + 12  # content fit


# ---------------------------------------------------------------------------- run-time estimate
# The estimate itself is tested in test_run_time.py; here, the note the Space shows with it.
@pytest.fixture
def space(monkeypatch, tmp_path):
    """A fresh app on the CPU whose measured paces go to a temp file: no earlier run counts."""
    app = _load_app()
    monkeypatch.setattr(app, "_pace_file", lambda: tmp_path / "paces.json")
    monkeypatch.setattr(app, "_device_type", lambda: "cpu")
    return app


def test_the_style_transfer_note_counts_fitting_the_content_image(space):
    assert "fitting the content image first, ~2 min" in space.run_time_note("style_transfer", 30)
    assert "content" not in space.run_time_note("text_to_image", 30)


@pytest.mark.parametrize("steps", [float("nan"), -3, 0, None, 2.5, 10**6, "30", True])
def test_a_bad_steps_value_gets_a_clear_message_not_a_crash(space, steps):
    note = space.run_time_note("text_to_image", steps)
    assert note.startswith("No run-time estimate: Steps must be") and str(steps) in note


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_after_a_run_the_note_uses_its_measured_pace_and_no_load(space, clip_env):
    before = space.run_time_note("text_to_image", 12)
    assert before.startswith("About ") and "for 12 steps on this CPU" in before
    assert "estimate from our CPU benchmark" in before and "loads the encoder, ~10 s" in before
    list(space.text_to_image("a red boat", "", 12, 0))
    after = space.run_time_note("text_to_image", 12)
    assert "(measured on the last run)" in after  # and no load: the encoder is loaded now
    pace = space._measured_pace(space._pace_key("text_to_image", "clip", space.current_settings()))
    assert 0 < pace.step_s < run_time.prior_pace("text_to_image", "cpu", 32).step_s  # tiny CLIP
    seconds = pace.setup_s + 12 * pace.step_s
    assert after.startswith(f"About {run_time.format_duration(seconds)} for 12")
    other_tab = space.run_time_note("reconstruct", 12)  # the same encoder, not yet its pace
    assert "estimate from our CPU benchmark" in other_tab and "loads" not in other_tab


def test_a_measured_pace_reaches_a_process_that_did_not_run_it(space, monkeypatch):
    """ZeroGPU runs the tabs in a forked worker: the page's process must still see the pace."""
    settings = space.configure(space.SpaceSettings(clip="ViT-B-32", pretrained="random"))
    space._record_pace(space._pace_key("reconstruct", "clip", settings), run_time.Pace(0.25, 1.0))
    page = _load_app()  # none of the worker's module state
    monkeypatch.setattr(page, "_pace_file", space._pace_file)
    monkeypatch.setattr(page, "_device_type", lambda: "cpu")
    page.configure(settings)
    note = page.run_time_note("reconstruct", 40)  # 1 s + 40 x 0.25 s + 10 s to load
    assert note.startswith("About 20 s for 40 steps on this CPU (measured on the last run;")
    assert "measured" not in page.run_time_note("text_to_image", 40)  # each tab its own pace


def test_an_unreadable_or_odd_pace_file_leaves_the_priors(space):
    space.configure(space.SpaceSettings(clip="ViT-B-32", pretrained="random"))
    space._pace_file().write_text("{not json")
    assert "estimate from our CPU benchmark" in space.run_time_note("text_to_image", 30)
    key = space._pace_key("text_to_image", "clip", space.current_settings())
    space._pace_file().write_text(f'{{"{key}": {{"step_s": -1, "setup_s": 0}}}}')
    assert "estimate from our CPU benchmark" in space.run_time_note("text_to_image", 30)


def test_each_clip_tab_shows_its_estimate_beside_steps_and_follows_the_slider(space):
    demo = space.build_demo(space.SpaceSettings(clip="ViT-B-32", pretrained="random", steps=7))
    texts = [b.value for b in demo.blocks.values() if type(b).__name__ == "Markdown"]
    notes = [t for t in texts if str(t).startswith("About")]
    assert len(notes) == 3 and all("for 7 steps on this CPU" in note for note in notes)
    wired = {
        fn.fn.args[0]: fn
        for fn in demo.fns.values()
        if isinstance(fn.fn, functools.partial) and fn.fn.func is space.run_time_note
    }
    assert sorted(wired) == sorted(space.TASK_ENCODER) == sorted(run_time.TASKS)
    for fn in wired.values():  # the slider's change and each page load, off the heavy queue
        assert [block.label for block in fn.inputs] == ["Steps"]
        assert sorted(event for _, event in fn.targets) == ["change", "load"]
        assert fn.queue is False
    endpoints = demo.get_api_info()["named_endpoints"]
    assert not [name for name in endpoints if "time" in name or "partial" in name]


def test_on_zerogpu_the_tabs_default_to_the_gpu_before_one_is_attached(monkeypatch, tmp_path):
    app = _load_app()
    monkeypatch.setattr(app, "_pace_file", lambda: tmp_path / "paces.json")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # no GPU outside spaces.GPU
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    settings = app.configure(app.SpaceSettings(clip="ViT-B-32", pretrained="random"))
    assert (settings.default_steps, settings.default_resolution) == (400, 224)
    note = app.run_time_note("text_to_image", 400)  # 20 s to load + 400 x 40 ms
    assert note.startswith("About 35 s for 400 steps on the GPU (a guess: no GPU run has been")
    monkeypatch.delenv("SPACES_ZERO_GPU")
    assert (settings.default_steps, settings.default_resolution) == (30, 96)


def test_the_space_asks_for_a_gpu_that_zerogpu_can_run():
    """README's front matter is the Space's config; the CLIP tabs need a GPU (about 14 minutes
    for 400 steps on a basic CPU)."""
    import yaml
    from huggingface_hub import SpaceHardware

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    front = yaml.safe_load(readme.split("---\n")[1])
    hardware = SpaceHardware(front["suggested_hardware"]).value  # a flavour the Hub knows
    assert not hardware.startswith("cpu")
    if hardware.startswith("zero"):  # ZeroGPU runs Python 3.10 and 3.12 only (its docs)
        assert str(front["python_version"]) in {"3.10", "3.12"}


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_image_endpoints_over_http_take_any_upload(clip_env, tmp_path_factory):
    """RGBA, greyscale, 16-bit and 8000x8000 uploads all work; a non-image is a clear error."""
    import numpy as np
    from gradio_client import handle_file

    folder = tmp_path_factory.mktemp("uploads")
    uploads = {
        "rgba.png": Image.new("RGBA", (40, 30), (255, 0, 0, 128)),
        "grey.png": Image.new("L", (30, 40), 90),
        "sixteen.png": Image.fromarray(np.full((32, 32), 40000, dtype=np.uint16)),
        "huge.png": Image.new("RGB", (8000, 8000), (10, 200, 30)),
    }
    for name, image in uploads.items():
        image.save(folder / name)
    (folder / "notes.png").write_text("not an image at all")
    app = _load_app()
    with _served(app, tmp_path_factory.mktemp("downloads"), queue_size=4) as client:
        for name in uploads:
            image, status, _ = client.predict(
                handle_file(str(folder / name)), 2, 0, api_name="/reconstruct"
            )
            assert Image.open(image).size == (32, 32), name
        image, _, _ = client.predict(
            handle_file(str(folder / "grey.png")),
            "an oil painting",
            None,
            2,
            0,
            api_name="/style_transfer",
        )
        assert Image.open(image).size == (32, 32)
        with pytest.raises(Exception, match="notes.png is not an image this Space can read") as err:
            client.predict(handle_file(str(folder / "notes.png")), 2, 0, api_name="/reconstruct")
        assert "/tmp" not in str(err.value) and "gradio" not in str(err.value)  # no server paths
        (folder / "big.png").write_bytes(b"\x89PNG" + bytes(26 * 2**20))  # over the 25 MB cap
        with pytest.raises(Exception, match="(?i)size"):
            client.predict(handle_file(str(folder / "big.png")), 2, 0, api_name="/reconstruct")
        image, _, _ = client.predict(
            handle_file(str(folder / "rgba.png")), 2, 0, api_name="/reconstruct"
        )  # still serving
        assert Image.open(image).size == (32, 32)


def test_every_generating_tab_has_examples_that_need_no_download():
    app = _load_app()
    demo = app.build_demo()
    datasets = [b for b in demo.blocks.values() if type(b).__name__ == "Dataset"]
    assert len(datasets) == 5  # the three CLIP tabs, class sampling, the energy explorer
    assert Path(app._example_photo()).is_file()


def test_the_clip_tabs_say_they_run_the_full_method_with_either_bank():
    app = _load_app()
    app.configure(app.SpaceSettings(clip="ViT-B-32", pretrained="random"))
    assert "anchor bank shipped with hubmodels (the full CLIP⁻¹ method)" in app._encoder_note()
    app.configure(app.SpaceSettings(clip="ViT-B-32", pretrained="openai", bank="org/bank"))
    note = app._encoder_note()
    assert "the openai weights and its own anchor bank (the full CLIP⁻¹ method)" in note
