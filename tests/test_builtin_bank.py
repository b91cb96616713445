"""The anchor bank shipped in the package: its files, its per-encoder keys and their cache, and
the full CLIP^-1 method it gives ``CLIPInverter`` by default."""

from __future__ import annotations

import hashlib
import json
import warnings

import pytest
import torch
from safetensors.torch import load_file

from hubmodels import CLIPInverter
from hubmodels.hub import CheckpointError
from hubmodels.inversion import builtin_bank as shipped
from hubmodels.inversion.encoders import RandomWeightsWarning, load_encoder
from hubmodels.inversion.finer import FinerNet, INRConfig

SMALL = dict(
    resolution=32, steps=2, augment={"n": 2}, neighbours=4, content_fit_steps=5, device="cpu"
)


def tiny_encoder(name: str, seed: int = 0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        torch.manual_seed(seed)
        return load_encoder(name, None)


def embedder(encoder):
    """A stand-in for ``engine.image_embedding``: the plain embedding of the photo."""
    from hubmodels.images import load_image

    def embed(path):
        with torch.no_grad():
            return torch.nn.functional.normalize(encoder.encode_image(load_image(path))[0], dim=0)

    return embed


@pytest.fixture(scope="module")
def inverter(tiny_clip) -> CLIPInverter:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        return CLIPInverter(clip=tiny_clip, **SMALL)


# ------------------------------------------------------------------ the shipped files


def test_every_photo_is_there_unchanged_with_caption_licence_and_credit():
    manifest = shipped.read_manifest()
    assert len(manifest["photos"]) >= 8
    for photo in manifest["photos"]:
        data = (shipped.BUILTIN_DIR / photo["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == photo["sha256"], photo["name"]
        assert all(photo[k].strip() for k in ("caption", "source", "licence", "credit"))


def test_the_anchors_fit_the_default_inr_and_render_a_photo_like_image():
    manifest = shipped.read_manifest()
    assert manifest["inr"] == INRConfig().to_dict() == shipped.builtin_inr()
    tensors = load_file(str(shipped.BUILTIN_DIR / shipped.ANCHORS))
    net = FinerNet(INRConfig())
    expected = {
        f"anchor.{k}": (len(manifest["photos"]), *v.shape) for k, v in net.state_dict().items()
    }
    assert {k: tuple(t.shape) for k, t in tensors.items()} == expected
    assert all(t.dtype == torch.float16 for t in tensors.values())
    # Anchor 0 renders its photo's colours: far nearer the photo than a grey image is.
    from hubmodels.images import load_image

    net.load_state_dict({k[len("anchor.") :]: t[0].float() for k, t in tensors.items()})
    with torch.no_grad():
        render = net.render(32, 32)
    photo = torch.nn.functional.interpolate(
        load_image(shipped.BUILTIN_DIR / manifest["photos"][0]["file"]), size=(32, 32), mode="area"
    )
    assert (render - photo).abs().mean() < 0.5 * (0.5 - photo).abs().mean()


def test_the_bank_stays_small():
    size = sum(p.stat().st_size for p in shipped.BUILTIN_DIR.rglob("*") if p.is_file())
    assert size < 6e6, f"the shipped bank is {size / 1e6:.1f} MB"


# ------------------------------------------------------------------ keys and their cache


def test_keys_are_computed_once_per_encoder_then_read_from_the_cache(
    tiny_clip, tmp_path, monkeypatch
):
    encoder = tiny_encoder(tiny_clip)
    bank = shipped.builtin_bank(encoder, embedder(encoder), {"n": 2}, cache_dir=tmp_path)
    assert len(bank) == len(shipped.read_manifest()["photos"]) and bank.has_text
    assert bank.encoder == encoder.name and bank.embed_dim == encoder.embed_dim
    assert len(list(tmp_path.glob("builtin-bank-keys-*.safetensors"))) == 1

    def never(*args):
        raise AssertionError("the keys were recomputed instead of read from the cache")

    monkeypatch.setattr(shipped, "_compute_keys", never)
    again = shipped.builtin_bank(encoder, embedder(encoder), {"n": 2}, cache_dir=tmp_path)
    torch.testing.assert_close(again.image_embeds, bank.image_embeds)
    torch.testing.assert_close(again.text_embeds, bank.text_embeds)


def test_other_weights_under_the_same_name_rebuild_the_keys(tiny_clip, tmp_path):
    first, second = tiny_encoder(tiny_clip, seed=0), tiny_encoder(tiny_clip, seed=1)
    assert first.name == second.name and first.fingerprint() != second.fingerprint()
    a = shipped.builtin_bank(first, embedder(first), {"n": 2}, cache_dir=tmp_path)
    b = shipped.builtin_bank(second, embedder(second), {"n": 2}, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("builtin-bank-keys-*.safetensors"))) == 2
    assert not torch.allclose(a.image_embeds, b.image_embeds)
    # Other augmentations are another key space too.
    shipped.builtin_bank(first, embedder(first), {"n": 4}, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("builtin-bank-keys-*.safetensors"))) == 3


def test_a_corrupt_or_unwritable_cache_costs_a_rebuild_never_an_error(tiny_clip, tmp_path, caplog):
    encoder = tiny_encoder(tiny_clip)
    good = shipped.builtin_bank(encoder, embedder(encoder), {"n": 2}, cache_dir=tmp_path)
    (cached,) = tmp_path.glob("builtin-bank-keys-*.safetensors")
    cached.write_bytes(b"not a safetensors file")
    rebuilt = shipped.builtin_bank(encoder, embedder(encoder), {"n": 2}, cache_dir=tmp_path)
    torch.testing.assert_close(rebuilt.image_embeds, good.image_embeds)
    assert "unreadable key cache" in caplog.text
    blocked = tmp_path / "a-file-not-a-folder"
    blocked.write_text("")
    shipped.builtin_bank(encoder, embedder(encoder), {"n": 2}, cache_dir=blocked)
    assert "could not cache" in caplog.text


def test_an_image_only_encoder_gets_image_keys_only(tmp_path):
    from hubmodels import RobustClassifier
    from hubmodels.inversion.encoders import ClassifierEncoder

    encoder = ClassifierEncoder(RobustClassifier.from_pretrained("fmnist-smallcnn-der"), "der")
    bank = shipped.builtin_bank(encoder, embedder(encoder), {"n": 2}, cache_dir=tmp_path)
    assert not bank.has_text and bank.image_embeds.shape[1] == encoder.embed_dim


# ------------------------------------------------------------------ the inverter's default


def test_text_to_image_runs_the_full_method_with_the_shipped_bank(inverter):
    captions = [p["caption"] for p in shipped.read_manifest()["photos"]]
    out = inverter.text_to_image("a cat on a sofa", seed=0)
    settings = out.settings
    assert settings["mode"] == "bank" and settings["bank"] == "builtin"
    assert settings["bank_size"] == len(captions) and settings["anchor_caption"] in captions
    assert len(settings["procrustes_pairs"]) == SMALL["neighbours"]
    assert set(settings["procrustes_pairs"]) <= set(captions)
    assert settings["procrustes_pairs"][0] == settings["anchor_caption"]


def test_reconstruction_and_style_transfer_use_it_too(inverter):
    from PIL import Image

    photo = Image.open(shipped.BUILTIN_DIR / "photos" / "coffee.jpg")
    out = inverter.reconstruct(photo, seed=0)
    assert out.settings["bank"] == "builtin" and out.settings["anchor_caption"]
    styled = inverter.style_transfer(photo, "an oil painting", seed=0)
    assert len(styled.settings["procrustes_pairs"]) == SMALL["neighbours"]


def test_the_anchor_start_is_the_nearest_anchor(inverter):
    """Reconstructing a shipped photo starts from that photo's own anchor."""
    photo = shipped.BUILTIN_DIR / "photos" / "chelsea.jpg"
    out = inverter.reconstruct(photo, seed=0, num_inference_steps=1)
    caption = next(
        p["caption"] for p in shipped.read_manifest()["photos"] if p["name"] == "chelsea"
    )
    assert out.settings["anchor_caption"] == caption


def test_bank_none_is_plain_and_another_inr_falls_back_with_a_warning(tiny_clip):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        plain = CLIPInverter(clip=tiny_clip, **SMALL, bank=None)
        with pytest.warns(UserWarning, match="shipped anchor bank"):
            other = CLIPInverter(clip=tiny_clip, **SMALL, inr={"width": 32})
    assert plain.bank is None and other.bank is None
    assert other.text_to_image("a cat", seed=0).settings["mode"] == "plain"


def test_the_choice_survives_save_and_load(inverter, tmp_path, tiny_clip):
    inverter.save_pretrained(tmp_path / "inv")
    config = json.loads((tmp_path / "inv" / "config.json").read_text())
    assert config["bank"] == "builtin" and config["has_bank"] is False
    assert not (tmp_path / "inv" / "bank.safetensors").exists()  # the package carries it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        loaded = CLIPInverter.from_pretrained(tmp_path / "inv", clip=tiny_clip)
    assert loaded.bank_source == "builtin" and len(loaded.bank) == len(inverter.bank)


def test_a_config_naming_another_bank_path_is_refused(inverter, tmp_path, tiny_clip):
    inverter.save_pretrained(tmp_path / "inv")
    path = tmp_path / "inv" / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps(dict(config, bank="/somewhere/else")))
    with pytest.raises(CheckpointError, match="bank must be"):
        CLIPInverter.from_pretrained(tmp_path / "inv", clip=tiny_clip)
