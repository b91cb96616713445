"""RobustClassifier: the forward contract, energies, save/load and strict loading."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import tiny_classifier
from hubmodels import CheckpointError, RobustClassifier
from hubmodels.hub import PRESETS, available_presets


def test_forward_returns_logits_and_normalises_inside(tiny_model):
    x = torch.rand(4, 1, 8, 8)
    logits = tiny_model(x)
    assert logits.shape == (4, 3)
    by_hand = tiny_model.backbone((x - 0.5) / 0.25)
    assert torch.allclose(logits, by_hand)


def test_energy_methods_use_the_shared_definitions(tiny_model):
    x = torch.rand(5, 1, 8, 8)
    logits = tiny_model(x)
    assert torch.allclose(tiny_model.energy(x), -torch.logsumexp(logits, 1))
    y = torch.tensor([0, 1, 2, 0, 1])
    assert torch.allclose(tiny_model.energy(x, y), -logits[torch.arange(5), y])
    assert torch.allclose(tiny_model.energy(x, 2), -logits[:, 2])


@pytest.mark.parametrize("shape", [(1, 8, 8), (2, 3, 8, 8), (2, 1, 9, 8)])
def test_wrong_input_shape_is_a_clear_error(tiny_model, shape):
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 1, 8, 8\)"):
        tiny_model(torch.rand(*shape))


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="class_names"):
        tiny_classifier(class_names=["a"])
    with pytest.raises(ValueError, match="mean and std"):
        tiny_classifier(mean=[0.5, 0.5])
    with pytest.raises(ValueError, match="unknown architecture|known"):
        tiny_classifier(architecture="resnet9000")


def test_save_load_round_trip_gives_identical_logits(tiny_model, tmp_path):
    with torch.no_grad():  # move BN statistics away from their defaults so they are tested too
        tiny_model.backbone.head.bias.add_(0.3)
    tiny_model.update_config(metrics={"clean_acc": 0.5})
    tiny_model.save_pretrained(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    loaded = RobustClassifier.from_pretrained(tmp_path / "ckpt")
    x = torch.rand(6, 1, 8, 8)
    assert torch.equal(tiny_model(x), loaded(x))
    assert loaded.config == tiny_model.config
    assert not loaded.training
    # Normalisation lives in the config, not in the weights file.
    assert "mean" not in load_file(str(tmp_path / "ckpt" / "model.safetensors"))


def test_model_card_states_architecture_data_threat_model_recipe_and_metrics(tiny_model, tmp_path):
    tiny_model.update_config(training={"method": "weat_adv", "beta": 6.0, "command": "python -m x"})
    tiny_model.update_config(metrics={"pgd20_acc": 0.4321, "autoattack_seconds": 22077.8})
    tiny_model.save_pretrained(tmp_path)
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: hubmodels" in card
    for text in (
        "small_cnn",
        "toy",
        "linf with epsilon 0.1",
        "weat_adv",
        "python -m x",
        "pgd20_acc",
        "0.4321",
        "| autoattack_seconds | 22078 |",
        "ECCV 2024",
    ):
        assert text in card
    # Saving again with new metrics rewrites the card (it never goes stale).
    tiny_model.update_config(metrics={"pgd20_acc": 0.1111})
    tiny_model.save_pretrained(tmp_path)
    assert "0.1111" in (tmp_path / "README.md").read_text()


def _saved(tmp_path, model=None):
    folder = tmp_path / "ckpt"
    (model or tiny_classifier()).save_pretrained(folder)
    return folder


def _tamper(folder, change):
    path = folder / "model.safetensors"
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path))


def test_strict_loading_rejects_a_missing_tensor(tmp_path):
    folder = _saved(tmp_path)
    _tamper(folder, lambda t: t.pop("backbone.head.weight"))
    with pytest.raises(CheckpointError, match=r"missing tensors: backbone\.head\.weight"):
        RobustClassifier.from_pretrained(folder)


def test_strict_loading_rejects_an_unexpected_tensor(tmp_path):
    folder = _saved(tmp_path)
    _tamper(folder, lambda t: t.update(extra=torch.zeros(2)))
    with pytest.raises(CheckpointError, match="unexpected tensors: extra"):
        RobustClassifier.from_pretrained(folder)


def test_strict_loading_rejects_a_misshaped_tensor(tmp_path):
    folder = _saved(tmp_path)
    _tamper(folder, lambda t: t.update({"backbone.head.bias": torch.zeros(4)}))
    with pytest.raises(
        CheckpointError, match=r"mis-shaped tensors: backbone\.head\.bias: file \(4,\)"
    ):
        RobustClassifier.from_pretrained(folder)


def test_strict_loading_rejects_nan_weights(tmp_path):
    folder = _saved(tmp_path)
    _tamper(folder, lambda t: t["backbone.head.bias"].fill_(float("nan")))
    with pytest.raises(CheckpointError, match="non-finite"):
        RobustClassifier.from_pretrained(folder)


def test_a_config_that_mismatches_the_weights_is_refused(tmp_path):
    folder = _saved(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["num_classes"], config["class_names"] = 4, None
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="does not match the model its config describes"):
        RobustClassifier.from_pretrained(folder)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.update(architecture="nope"), "config does not build"),
        (lambda c: c.update(colour="blue"), "keys this version does not know"),
    ],
)
def test_a_config_that_does_not_build_is_a_clear_error(tmp_path, edit, message):
    folder = _saved(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=message):
        RobustClassifier.from_pretrained(folder)


def test_corrupt_files_are_clear_errors(tmp_path):
    folder = _saved(tmp_path)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        RobustClassifier.from_pretrained(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not a readable JSON config"):
        RobustClassifier.from_pretrained(folder)


def test_a_rejected_file_leaves_nothing_half_loaded(tmp_path, tiny_model):
    from hubmodels.hub import load_state_dict_strict

    folder = _saved(tmp_path, tiny_classifier(seed=1))
    _tamper(folder, lambda t: t.pop("backbone.head.weight"))
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    with pytest.raises(CheckpointError):
        load_state_dict_strict(tiny_model, folder / "model.safetensors")
    assert all(torch.equal(before[k], v) for k, v in tiny_model.state_dict().items())


def test_missing_folder_files_and_bad_sources(tmp_path):
    with pytest.raises(CheckpointError, match="missing config.json, model.safetensors"):
        RobustClassifier.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="neither a preset"):
        RobustClassifier.from_pretrained("no-such-preset")


def test_hub_ids_go_through_the_hub_client_and_fail_clearly_offline(tmp_path):
    with pytest.raises(CheckpointError, match="not in the local cache"):
        RobustClassifier.from_pretrained("org/missing", cache_dir=tmp_path, local_files_only=True)


def test_hub_ids_load_from_the_hub_cache(tmp_path, tiny_model):
    """A snapshot in the hub cache layout loads by repo id with revision and cache_dir."""
    snapshot = tmp_path / "models--org--tiny" / "snapshots" / ("a" * 40)
    tiny_model.save_pretrained(snapshot)
    (tmp_path / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "models--org--tiny" / "refs" / "main").write_text("a" * 40)
    loaded = RobustClassifier.from_pretrained(
        "org/tiny", cache_dir=tmp_path, revision="main", local_files_only=True
    )
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(loaded(x), tiny_model(x))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_resolve_offline_and_carry_their_numbers(name):
    assert name in available_presets()
    model = RobustClassifier.from_pretrained(name)
    c = model.config
    assert c["training"].get("command", "").startswith("python -m hubmodels train")
    assert c["metrics"], "a preset ships with measured numbers"
    x = torch.rand(2, c["in_channels"], c["image_size"], c["image_size"])
    assert model(x).shape == (2, c["num_classes"])
    # "A few MB at most": 2.8 MiB of float32 weights plus a 4.2 MiB sampling prior (24 local
    # PCAs a class in float16: tens of clusters, so that samples are diverse and no copies).
    assert (PRESETS[name].path / "model.safetensors").stat().st_size < 7.5 * 2**20


def test_at_least_one_preset_is_registered():
    assert available_presets(), "the package ships embedded presets"


# Peak memory from VmHWM, which belongs to this process's own address space: ru_maxrss would
# also count the pytest parent that forked it (Linux keeps it across exec).
HOSTILE_LOAD = """
import json, re, sys, time
from pathlib import Path
from hubmodels import CheckpointError, RobustClassifier
started = time.time()
try:
    RobustClassifier.from_pretrained(sys.argv[1])
except CheckpointError as err:
    status = Path("/proc/self/status").read_text()
    peak_kib = int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1))
    print(json.dumps({"error": str(err), "seconds": time.time() - started,
                      "peak_mib": peak_kib / 1024}))
"""


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"num_classes": 10**8}, "num_classes must be a whole number in"),
        ({"num_classes": 90_000}, "mis-shaped tensors: backbone.head.bias"),  # built on meta
        ({"image_size": 4096}, "mis-shaped tensors"),
    ],
)
def test_a_hostile_config_is_refused_before_anything_is_allocated(tmp_path, edit, message):
    """A config claiming a huge model must fail fast and small, never allocate what it claims
    (90,000 classes of a 28 px model with its prior would be about 4.5 GB of buffers)."""
    import subprocess
    import sys

    model = RobustClassifier.from_pretrained("fmnist-smallcnn-standard")
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(edit, class_names=None)
    (tmp_path / "config.json").write_text(json.dumps(config))
    result = subprocess.run(
        [sys.executable, "-c", HOSTILE_LOAD, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(result.stdout)
    assert message in report["error"]
    assert report["seconds"] < 10
    assert report["peak_mib"] < 2000  # the interpreter, torch and one real 7 MB checkpoint


def test_saved_weights_are_as_readable_as_the_config(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path)
    mode = (tmp_path / "model.safetensors").stat().st_mode & 0o777
    assert mode == (tmp_path / "config.json").stat().st_mode & 0o777
    assert mode & 0o044  # group and others may read (safetensors alone writes 0600)


def test_the_config_changes_only_through_update_config(tiny_model):
    with pytest.raises(TypeError):
        tiny_model.config["metrics"] = {"clean_acc": 1.0}
    with pytest.raises(TypeError):
        tiny_model.config["threat_model"]["epsilon"] = 1.0  # nested mappings too
    tiny_model.config["class_names"].append("intruder")  # a copy: the model keeps its own
    assert len(tiny_model.class_names) == tiny_model.config["num_classes"]
    tiny_model.update_config(metrics={"clean_acc": 0.75})
    assert tiny_model.config["metrics"] == {"clean_acc": 0.75}
    with pytest.raises(KeyError, match="unknown config entries \\['colour'\\]"):
        tiny_model.update_config(colour="red")
    with pytest.raises(TypeError):
        tiny_model.update_config(metrics={"clean_acc": object()})  # not JSON-able
    assert tiny_model.config["metrics"] == {"clean_acc": 0.75}
