"""The anchor bank (docs/methods.md 4.1, 4.4): validation, retrieval, strict save/load, shards."""

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from hubmodels.hub import CheckpointError
from hubmodels.inversion.bank import AnchorBank, stack_states

M, D = 5, 16
INR = {"hidden_layers": 4, "width": 8, "omega": 30.0, "first_bias_scale": 1.0}
ENCODER = "open_clip:ViT-B-32/laion2b_s34b_b79k"


def _parts(m=M, d=D, seed=0, text=True):
    g = torch.Generator().manual_seed(seed)
    anchors = {
        "layers.0.weight": 0.5 * torch.randn(m, 8, 2, generator=g),
        "layers.0.bias": torch.rand(m, 8, generator=g) * 2 - 1,
    }
    return dict(
        image_embeds=torch.randn(m, d, generator=g),
        anchors=anchors,
        captions=[f"caption {seed}-{i} \u00e9t\u00e9" for i in range(m)],
        encoder=ENCODER,
        inr=INR,
        text_embeds=torch.randn(m, d, generator=g) if text else None,
    )


@pytest.fixture
def saved(tmp_path):
    bank = AnchorBank(**_parts())
    bank.save(tmp_path / "bank")
    return bank, tmp_path / "bank"


def test_construction_normalises_and_describes():
    parts = _parts()
    bank = AnchorBank(**parts)
    assert len(bank) == M and bank.embed_dim == D and bank.has_text
    assert bank.image_embeds.dtype == torch.float32
    torch.testing.assert_close(bank.image_embeds.norm(dim=1), torch.ones(M))
    torch.testing.assert_close(bank.image_embeds, F.normalize(parts["image_embeds"], dim=1))
    assert bank.anchor_shapes == {"layers.0.weight": (8, 2), "layers.0.bias": (8,)}
    state = bank.anchor_state(2)
    assert state.keys() == parts["anchors"].keys()
    assert all(t.dtype == torch.float32 for t in state.values())
    torch.testing.assert_close(
        state["layers.0.weight"], parts["anchors"]["layers.0.weight"][2], atol=1e-3, rtol=1e-3
    )
    state["layers.0.bias"].zero_()  # a copy: the bank is unchanged
    assert bank.anchor_state(2)["layers.0.bias"].abs().sum() > 0
    assert bank.anchor_state(torch.tensor(4))["layers.0.bias"].shape == (8,)
    with pytest.raises(IndexError):
        bank.anchor_state(M)
    assert bank.nbytes() > M * D * 4 * 2
    assert not AnchorBank(**_parts(text=False)).has_text


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(captions=["a"] * (M - 1)), "captions"),
        (dict(text_embeds=torch.randn(M, D + 1)), "text_embeds"),
        (dict(image_embeds=torch.randn(0, D)), "M, d >= 1"),
        (dict(image_embeds=torch.randn(M)), r"\(M, d\)"),
        (dict(anchors={"w": torch.randn(M + 1, 3)}), "leading size"),
        (dict(anchors={}), "non-empty"),
        (dict(anchors={"w": torch.full((M, 3), 1e6)}), "float16"),
        (dict(anchors={"w": torch.full((M, 3), float("nan"))}), "non-finite"),
        (dict(encoder=""), "encoder"),
        (dict(inr={"f": object()}), "JSON"),
    ],
)
def test_construction_refuses(change, match):
    with pytest.raises(ValueError, match=match):
        AnchorBank(**{**_parts(), **change})


def test_construction_refuses_non_finite_and_zero_embeddings():
    parts = _parts()
    parts["image_embeds"][3, 0] = float("inf")
    with pytest.raises(ValueError, match="non-finite.*3"):
        AnchorBank(**parts)
    parts = _parts()
    parts["text_embeds"][1] = 0
    with pytest.raises(ValueError, match="zero rows"):
        AnchorBank(**parts)


def test_save_load_round_trip(saved):
    bank, folder = saved
    assert sorted(p.name for p in folder.iterdir()) == ["bank.json", "bank.safetensors"]
    config = json.loads((folder / "bank.json").read_text(encoding="utf-8"))
    assert config["format"] == 1 and config["size"] == M and config["embed_dim"] == D
    loaded = AnchorBank.load(folder)
    assert loaded.captions == bank.captions
    assert loaded.encoder == bank.encoder and loaded.inr == bank.inr == INR
    torch.testing.assert_close(loaded.image_embeds, bank.image_embeds)
    torch.testing.assert_close(loaded.text_embeds, bank.text_embeds)
    original = _parts()["anchors"]
    assert list(loaded.anchors) == list(original)  # the state_dict order is kept
    for name, value in original.items():
        # Anchors are stored in float16: relative error <= 2^-11 (plus subnormals near zero).
        for i in range(M):
            got = loaded.anchor_state(i)[name]
            assert (got - value[i]).abs().max() <= value[i].abs().max() * 2**-11 + 1e-7
    # Saving again over an existing bank works and leaves no temporary files.
    loaded.save(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["bank.json", "bank.safetensors"]


def test_failed_save_leaves_the_old_bank(saved, monkeypatch):
    bank, folder = saved
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def broken_save(tensors, path):
        with open(path, "wb") as f:
            f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr("hubmodels.inversion.bank.save_safetensors", broken_save)
    with pytest.raises(OSError, match="disk full"):
        AnchorBank(**_parts(m=3, seed=7)).save(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert len(AnchorBank.load(folder)) == len(bank)


def test_image_only_bank_round_trips(tmp_path):
    bank = AnchorBank(**_parts(text=False))
    bank.save(tmp_path)
    loaded = AnchorBank.load(tmp_path)
    assert not loaded.has_text and loaded.text_embeds is None
    with pytest.raises(ValueError, match="no text embeddings.*against='image'"):
        loaded.retrieve(torch.randn(D), 2)
    indices, _ = loaded.retrieve(bank.image_embeds[1], 1, against="image")
    assert indices.tolist() == [1]


def test_retrieve():
    parts = _parts()
    bank = AnchorBank(**parts)
    for i in range(M):
        indices, sims = bank.retrieve(parts["text_embeds"][i] * 3.0, 3)
        assert indices[0] == i and float(sims[0]) == pytest.approx(1.0, abs=1e-5)
        assert (sims[:-1] >= sims[1:]).all()
        indices, _ = bank.retrieve(parts["image_embeds"][i].double(), 1, against="image")
        assert indices.tolist() == [i]
    indices, sims = bank.retrieve(torch.randn(D), 50)
    assert sorted(indices.tolist()) == list(range(M)) and len(sims) == M
    with pytest.raises(ValueError, match=f"size {D + 1}.*size {D}"):
        bank.retrieve(torch.randn(D + 1), 2)
    with pytest.raises(ValueError, match="against"):
        bank.retrieve(torch.randn(D), 2, against="caption")
    with pytest.raises(ValueError, match="positive integer"):
        bank.retrieve(torch.randn(D), 0)
    with pytest.raises(ValueError, match="non-finite"):
        bank.retrieve(torch.full((D,), float("nan")), 2)


def test_check_compatible():
    bank = AnchorBank(**_parts())
    bank.check_compatible(ENCODER, D)
    with pytest.raises(CheckpointError, match=f"{ENCODER} \\(d={D}\\).*timm:vit \\(d={D}\\)"):
        bank.check_compatible("timm:vit", D)
    with pytest.raises(CheckpointError, match=f"d={D}.*d=768"):
        bank.check_compatible(ENCODER, 768)


def test_load_refuses_missing_json(saved):
    _, folder = saved
    (folder / "bank.json").unlink()
    with pytest.raises(CheckpointError, match="missing bank.json"):
        AnchorBank.load(folder)


def test_load_refuses_truncated_safetensors(saved):
    _, folder = saved
    path = folder / "bank.safetensors"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(CheckpointError, match="bank.safetensors is not a readable"):
        AnchorBank.load(folder)


def test_load_refuses_corrupt_json(saved):
    _, folder = saved
    (folder / "bank.json").write_text('{"format": 1, ', encoding="utf-8")
    with pytest.raises(CheckpointError, match="bank.json"):
        AnchorBank.load(folder)


def _edit_json(folder, **changes):
    path = folder / "bank.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config.update(changes)
    path.write_text(json.dumps(config), encoding="utf-8")
    return config


def test_load_refuses_size_mismatch(saved):
    _, folder = saved
    config = _edit_json(folder, size=M + 1)
    _edit_json(folder, captions=config["captions"] + ["one more"])
    with pytest.raises(
        CheckpointError, match="mis-shaped tensors: .*image_embeds: file .* vs bank.json"
    ):
        AnchorBank.load(folder)
    _edit_json(folder, size=M + 1, captions=config["captions"][:M])
    with pytest.raises(CheckpointError, match=f"{M} captions but says size {M + 1}"):
        AnchorBank.load(folder)


def test_load_refuses_unknown_format_and_missing_fields(saved):
    _, folder = saved
    _edit_json(folder, format=2)
    with pytest.raises(CheckpointError, match="format 2"):
        AnchorBank.load(folder)
    config = _edit_json(folder, format=1)
    del config["encoder"]
    (folder / "bank.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(CheckpointError, match="lacks the fields encoder"):
        AnchorBank.load(folder)


def test_load_refuses_nan(saved):
    _, folder = saved
    tensors = load_file(str(folder / "bank.safetensors"))
    tensors["anchor.layers.0.bias"][2, 3] = float("nan")
    save_file(tensors, str(folder / "bank.safetensors"))
    with pytest.raises(CheckpointError, match="non-finite.*anchor.layers.0.bias"):
        AnchorBank.load(folder)


def test_load_refuses_extra_and_missing_keys(saved):
    _, folder = saved
    tensors = load_file(str(folder / "bank.safetensors"))
    tensors["anchor.layers.1.weight"] = torch.zeros(M, 3)
    save_file(tensors, str(folder / "bank.safetensors"))
    with pytest.raises(CheckpointError, match="unexpected tensors: anchor.layers.1.weight"):
        AnchorBank.load(folder)
    del tensors["anchor.layers.1.weight"], tensors["text_embeds"]
    save_file(tensors, str(folder / "bank.safetensors"))
    with pytest.raises(CheckpointError, match="missing tensors: text_embeds"):
        AnchorBank.load(folder)


def test_concatenate():
    shards = [AnchorBank(**_parts(m=m, seed=s)) for s, m in enumerate((2, 3, 1))]
    merged = AnchorBank.concatenate(shards)
    assert len(merged) == 6 and merged.encoder == ENCODER and merged.inr == INR
    assert merged.captions == [c for s in shards for c in s.captions]
    torch.testing.assert_close(merged.text_embeds[2:5], shards[1].text_embeds)
    torch.testing.assert_close(merged.anchor_state(5), shards[2].anchor_state(0))
    other = AnchorBank(**{**_parts(m=2, seed=9), "encoder": "timm:vit"})
    with pytest.raises(ValueError, match="encoder 'timm:vit'"):
        AnchorBank.concatenate([shards[0], other])
    other = AnchorBank(**{**_parts(m=2, seed=9), "inr": {**INR, "width": 16}})
    with pytest.raises(ValueError, match="INR config"):
        AnchorBank.concatenate([shards[0], other])
    with pytest.raises(ValueError, match="has_text"):
        AnchorBank.concatenate([shards[0], AnchorBank(**_parts(m=2, text=False))])
    with pytest.raises(ValueError, match="at least one"):
        AnchorBank.concatenate([])


def test_stack_states():
    states = [{"w": torch.randn(4, 2), "b": torch.randn(4)} for _ in range(3)]
    stacked = stack_states(states)
    assert stacked["w"].shape == (3, 4, 2) and torch.equal(stacked["b"][1], states[1]["b"])
    with pytest.raises(ValueError, match="state dict 1"):
        stack_states([states[0], {"w": torch.randn(4, 3), "b": torch.randn(4)}])
