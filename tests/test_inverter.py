"""CLIPInverter end to end on a tiny random CLIP: tasks, seeds, the bank, hub I/O, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from hubmodels import CLIPInverter
from hubmodels.hub import CheckpointError
from hubmodels.inversion.build_bank import build_bank
from hubmodels.inversion.encoders import RandomWeightsWarning

TINY = dict(
    resolution=32,
    steps=8,
    lr=1e-3,
    inr={"hidden_layers": 2, "width": 32},
    augment={"n": 4},
    neighbours=3,
    content_fit_steps=10,
    style_start_layer=1,
    bank=None,  # plain unless a test attaches one: the shipped bank fits the default INR only
    device="cpu",
)


def photo(seed: int, size: int = 40) -> Image.Image:
    """A smooth random colour image: enough structure for an INR to fit."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(4, 4, 3)).astype(np.uint8)
    return Image.fromarray(coarse).resize((size, size), Image.BILINEAR)


@pytest.fixture(scope="module")
def inverter(tiny_clip) -> CLIPInverter:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        return CLIPInverter(clip=tiny_clip, **TINY)


@pytest.fixture(scope="module")
def bank(inverter):
    pairs = [(photo(i), caption) for i, caption in enumerate(["a red boat", "a cat", "a tree"])]
    return build_bank(inverter, pairs, anchor_resolution=16, anchor_steps=5, seed=0)


def test_random_clip_warns_loudly(tiny_clip):
    with pytest.warns(RandomWeightsWarning):
        CLIPInverter(clip=tiny_clip, **TINY)


def test_plain_text_to_image_returns_images_losses_and_settings(inverter):
    out = inverter.text_to_image("a lighthouse at dusk", num_inference_steps=6, seed=3)
    assert len(out.images) == 1 and out.images[0].size == (32, 32)
    assert out.images[0].mode == "RGB"
    assert len(out.losses) == 6 and all(np.isfinite(out.losses))
    assert out.settings["seed"] == 3 and out.settings["mode"] == "plain"
    assert out.settings["prompt"] == "a lighthouse at dusk"
    assert out["images"] is out.images  # diffusers BaseOutput access


def test_seed_reproduces_and_generator_is_accepted(inverter):
    def pixels(**kw):
        return np.asarray(inverter.text_to_image("a cat", num_inference_steps=4, **kw).images[0])

    assert np.array_equal(pixels(seed=1), pixels(seed=1))
    assert not np.array_equal(pixels(seed=1), pixels(seed=2))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert np.array_equal(pixels(generator=g1), pixels(generator=g2))


def test_optimisation_lowers_the_loss(inverter):
    out = inverter.text_to_image("a red boat", num_inference_steps=40, seed=0)
    assert np.mean(out.losses[-5:]) < np.mean(out.losses[:5])


def test_callback_streams_previews(inverter):
    seen = []
    inverter.text_to_image(
        "a cat",
        num_inference_steps=7,
        seed=0,
        preview_every=3,
        callback=lambda step, image, info: seen.append((step, tuple(image.shape), info["loss"])),
    )
    assert [s for s, _, _ in seen] == [3, 6, 7]
    assert all(shape == (1, 3, 32, 32) and np.isfinite(loss) for _, shape, loss in seen)


def test_a_coarse_render_grid_optimises_the_full_resolution_image(tiny_clip):
    """render_resolution 16 for a 32-px image: previews at 16, shifted every step, result at 32."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        coarse = CLIPInverter(clip=tiny_clip, **{**TINY, "render_resolution": 16})
        full = CLIPInverter(clip=tiny_clip, **{**TINY, "render_resolution": None})
    renders, previews = [], []
    net = coarse.engine.new_net(0)
    original_render = net.render

    def recording(height, width, shift=None):
        renders.append((height, width, None if shift is None else shift.tolist()))
        return original_render(height, width, shift)

    net.render = recording
    target = torch.ones(coarse.encoder.embed_dim)
    out = coarse.engine.optimise(
        net,
        [(target, 1.0)],
        steps=4,
        seed=0,
        callback=lambda *a: previews.append(a[1].shape),
        preview_every=2,
    )
    shifts = [shift for height, width, shift in renders[:4]]
    assert [r[:2] for r in renders] == [(16, 16)] * 4 + [(32, 32)]  # 4 steps, then the result
    assert all(max(abs(v) for v in shift) <= 0.5 for shift in shifts)
    assert len({tuple(shift) for shift in shifts}) == 4  # a fresh shift every step
    assert renders[-1][2] is None  # the result sits on the output's own grid
    assert previews == [(1, 3, 16, 16)] * 2 and out.image.shape == (1, 3, 32, 32)
    assert coarse.config["render_resolution"] == 16
    assert full.text_to_image("a cat", num_inference_steps=2, seed=0).images[0].size == (32, 32)


def test_the_engine_is_the_loop_every_task_runs(inverter):
    """The public engine reproduces a task exactly, and a replaced copy leaves it untouched."""
    photo = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    out = inverter.reconstruct(photo, num_inference_steps=3, seed=4, start="random")
    engine = inverter.engine
    target = engine.image_embedding(photo)
    assert target.shape == (inverter.encoder.embed_dim,)
    again = engine.optimise(engine.new_net(4), [(target, 1.0)], steps=3, seed=4)
    assert again.losses == pytest.approx(out.losses, rel=1e-5)
    assert again.image.shape == (1, 3, 32, 32)
    faster = engine.replace(lr=1e-2, render_resolution=8)
    assert (faster.lr, faster.render_resolution, faster.encoder) == (1e-2, 8, engine.encoder)
    assert engine.lr == inverter.config["lr"] and engine.render_resolution != 8
    with pytest.raises(TypeError, match="unknown engine settings \\['colour'\\]"):
        engine.replace(colour="red")
    with pytest.raises(ValueError, match="steps must be positive"):
        engine.optimise(engine.new_net(0), [(target, 1.0)], steps=0, seed=0)


def test_one_batched_encoder_call_per_step(inverter, monkeypatch):
    calls = []
    original = inverter.encoder.encode_image

    def counting(x):
        calls.append(x.shape[0])
        return original(x)

    monkeypatch.setattr(inverter.encoder, "encode_image", counting)
    inverter.text_to_image("a cat", num_inference_steps=5, seed=0)
    assert calls == [4] * 5  # n augmentations, one call each step


def test_weighted_and_negative_prompts(inverter):
    out = inverter.text_to_image(
        {"a cat": 1.0, "an oil painting": 0.5}, "blurry", num_inference_steps=3, seed=0
    )
    assert out.settings["negative_prompt"] == "blurry"
    out = inverter.text_to_image("a cat", "  ", num_inference_steps=1, seed=0)  # blank: none
    assert out.settings["negative_prompt"] is None
    with pytest.raises(ValueError, match="positive sum"):
        inverter.text_to_image({"a cat": -1.0}, num_inference_steps=1)


def test_bank_mode_starts_from_the_nearest_anchor(inverter, bank):
    inverter.use_bank(bank)
    try:
        first = []
        out = inverter.text_to_image(
            "a red boat",
            num_inference_steps=2,
            seed=0,
            preview_every=1,
            callback=lambda step, image, info: first.append(image) if step == 1 else None,
        )
        assert out.settings["mode"] == "bank"
        anchor = inverter.engine.net_from_state(
            bank.anchor_state(bank.captions.index(out.settings["anchor_caption"]))
        )
        with torch.no_grad():
            assert torch.allclose(first[0], anchor.render(32, 32), atol=1e-6)
    finally:
        inverter.use_bank(None)


def test_reconstruction_and_style_transfer_run(inverter):
    out = inverter.reconstruct(photo(7), num_inference_steps=4, seed=0)
    assert out.images[0].size == (32, 32) and out.settings["task"] == "reconstruct"
    out = inverter.style_transfer(photo(7), "an oil painting", num_inference_steps=4, seed=0)
    assert out.settings["style"] == "an oil painting"
    out = inverter.style_transfer(photo(7), photo(8), num_inference_steps=2, seed=0)
    assert out.settings["style"] == "<image>"


def test_save_and_load_round_trip_with_bank(inverter, bank, tmp_path, tiny_clip):
    inverter.use_bank(bank)
    try:
        inverter.save_pretrained(tmp_path)
    finally:
        inverter.use_bank(None)
    assert {p.name for p in tmp_path.iterdir()} >= {"config.json", "bank.safetensors", "bank.json"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        loaded = CLIPInverter.from_pretrained(tmp_path, device="cpu")
    assert loaded.config == inverter.config
    assert len(loaded.bank) == 3 and loaded.bank.captions == bank.captions
    # the encoder here is a fresh random CLIP: same name, so the bank is accepted
    from huggingface_hub import ModelCard

    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.library_name == "hubmodels" and "clip-inversion" in card.data.tags
    assert "an anchor bank of 3 AWP anchors" in card.text


def test_bank_of_another_encoder_is_refused(inverter, bank, tiny_clip):
    from hubmodels.inversion.bank import AnchorBank

    other = AnchorBank(
        image_embeds=torch.randn(3, 8),
        anchors={k: v.clone() for k, v in bank.anchors.items()},
        captions=bank.captions,
        encoder="open_clip:ViT-B-32/openai",
        inr=bank.inr,
    )
    with pytest.raises(CheckpointError, match="ViT-B-32"):
        inverter.use_bank(other)


def test_push_to_hub_uploads_config_and_bank(inverter, bank, fake_hub):
    inverter.use_bank(bank)
    try:
        url = inverter.push_to_hub("org/tiny-inverter")
    finally:
        inverter.use_bank(None)
    assert "org/tiny-inverter" in url
    assert {"config.json", "bank.safetensors", "bank.json", "README.md"} <= set(
        fake_hub.commits["org/tiny-inverter"]
    )


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda inv: inv.text_to_image(""), "empty"),
        (lambda inv: inv.text_to_image("   "), "empty"),
        (lambda inv: inv.text_to_image("a cat", num_inference_steps=0), "steps"),
        (lambda inv: inv.text_to_image("a cat", num_inference_steps=10**6), "steps"),
        (lambda inv: inv.text_to_image("a cat", seed=-1), "seed"),
        (lambda inv: inv.reconstruct("/no/such/file.png"), "no image file"),
        (lambda inv: inv.reconstruct(torch.full((3, 20, 20), float("nan"))), "NaN"),
        (lambda inv: inv.reconstruct(photo(1), start="anchor"), "needs a bank"),
    ],
)
def test_bad_input_is_a_clear_error(inverter, call, message):
    with pytest.raises(ValueError, match=message):
        call(inverter)


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(resolution=5000), "resolution"),
        (dict(render_resolution=8), "render_resolution"),
        (dict(lr=float("nan")), "lr"),
        (dict(blend_weight=-1.0), "blend_weight"),
        (dict(style_start_layer=99), "style_start_layer"),
    ],
)
def test_bad_settings_are_refused(tiny_clip, settings, message):
    with pytest.raises(ValueError, match=message):
        CLIPInverter(clip=tiny_clip, **{**TINY, **settings})


def test_corrupt_upload_is_a_clear_error(inverter, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        inverter.reconstruct(bad, num_inference_steps=1)


def test_hub_id_offline_is_a_clear_error(tiny_clip):
    with pytest.raises(CheckpointError, match="local cache"):
        CLIPInverter.from_pretrained("org/not-cached", clip=tiny_clip)


@pytest.mark.slow
def test_real_encoder_reconstruction_lowers_the_loss():
    """EfficientNet-Lite0 (real ImageNet weights, offline): 12 steps move toward the photo."""
    import skimage.data

    from hubmodels.inversion.encoders import efficientnet_lite0_weights

    inverter = CLIPInverter(
        clip="timm:efficientnet_lite0",
        pretrained=efficientnet_lite0_weights(),
        resolution=64,
        lr=1e-3,
        inr={"hidden_layers": 3, "width": 64},
        augment={"n": 2},
        bank=None,
        device="cpu",
    )
    out = inverter.reconstruct(skimage.data.chelsea(), num_inference_steps=12, seed=0)
    # measured: 0.86 -> 0.42 in 12 steps (cosine distance to the photo's embedding)
    assert np.mean(out.losses[-3:]) < 0.8 * np.mean(out.losses[:3])
    with pytest.raises(ValueError, match="no text tower"):
        inverter.text_to_image("a cat", num_inference_steps=1)
