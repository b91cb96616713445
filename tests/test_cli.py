"""``python -m hubmodels eval`` and the CLI's error handling."""

import json

import pytest
import torch

from conftest import FASHION_MNIST_DIR
from hubmodels import RobustClassifier
from hubmodels.__main__ import main
from hubmodels.metrics.robust_accuracy import device_name


@pytest.mark.slow
@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="needs dataset-fashion-mnist")
def test_eval_writes_clean_pgd_and_autoattack_into_config_and_card(tmp_path, capsys):
    model = RobustClassifier(
        architecture="small_cnn",
        num_classes=10,
        in_channels=1,
        image_size=28,
        dataset="fashion-mnist",
        threat_model={"norm": "linf", "epsilon": 0.1},
    )
    model.update_config(metrics={"val_clean_acc": 0.5})  # earlier numbers are kept
    model.save_pretrained(tmp_path / "ckpt")
    argv = [
        "eval",
        "--model",
        str(tmp_path / "ckpt"),
        "--num-images",
        "48",
        "--pgd-steps",
        "3",
        "5",
        "--batch-size",
        "16",
        "--device",
        "cpu",
        "--autoattack-images",
        "32",
        "--ledger-dir",
        str(tmp_path / "ledgers"),
    ]
    assert main(argv) == 0
    assert len(list((tmp_path / "ledgers").glob("*.json"))) == 1  # where it was told to keep it
    metrics = json.loads((tmp_path / "ckpt" / "config.json").read_text())["metrics"]
    assert metrics["val_clean_acc"] == 0.5
    assert metrics["test"] == "fashion-mnist test set, first 48 images"
    assert metrics["threat_model"] == "linf eps=0.1"
    for key in (
        "clean_acc",
        "clean_acc_first48",
        "pgd3_acc",
        "pgd5_acc",
        "autoattack_acc",
        "autoattack_seconds",
    ):
        assert key in metrics
    assert metrics["pgd5_device"] == device_name(torch.device("cpu"))
    # Stronger attacks never raise accuracy: each is a subset of the clean-correct images here.
    assert metrics["autoattack_images"] == 32 and metrics["pgd5_images"] == 48
    # AutoAttack's correct images (of the first 32) are among the clean-correct ones (of 48).
    assert round(metrics["autoattack_acc"] * 32) <= round(metrics["clean_acc"] * 48)
    assert metrics["pgd5_acc"] <= metrics["clean_acc"]
    card = (tmp_path / "ckpt" / "README.md").read_text()
    assert "autoattack_acc" in card and "fashion-mnist test set, first 48 images" in card
    RobustClassifier.from_pretrained(tmp_path / "ckpt")  # still loads strictly
    # The same command again reads AutoAttack's finished batches instead of attacking them.
    capsys.readouterr()
    assert main([*argv, "--pgd-steps", "--save-to", str(tmp_path / "again")]) == 0
    assert "autoattack: resuming from" in capsys.readouterr().out
    again = json.loads((tmp_path / "again" / "config.json").read_text())["metrics"]
    assert again["autoattack_acc"] == metrics["autoattack_acc"]
    assert again["autoattack_seconds"] == metrics["autoattack_seconds"]  # the first run's cost


def test_eval_of_a_broken_checkpoint_is_one_clear_line(tmp_path, capsys):
    (tmp_path / "ckpt").mkdir()
    assert main(["eval", "--model", str(tmp_path / "ckpt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "missing config.json" in err


def test_training_on_data_that_is_not_there_says_how_to_get_it(tmp_path, capsys):
    argv = [
        "train",
        "--dataset",
        "cifar10",
        "--data-root",
        str(tmp_path / "none"),
        "--output-dir",
        str(tmp_path / "run"),
        "--epochs",
        "1",
    ]
    assert main(argv) == 2
    assert "download" in capsys.readouterr().err


def test_bad_training_settings_are_refused(tmp_path, capsys):
    argv = ["train", "--schedule", "sometimes", "--output-dir", str(tmp_path / "run")]
    assert main(argv) == 2
    assert "unknown schedule" in capsys.readouterr().err


VERBS = [
    ["train"],
    ["eval"],
    ["fit-prior"],
    ["fit-energy-reference"],
    ["sample"],
    ["invert", "text"],
    ["build-bank"],
    ["push"],
]


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_every_verbs_help_says_what_to_type_without_the_source(verb, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*verb, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text and ".md" not in text  # no RST, no file the user does not have
    flags = [line for line in text.splitlines() if line.strip().startswith("--")]
    if verb != ["push"]:
        assert "(default: " in text
    if verb == ["train"]:
        assert "fashion-mnist, imagefolder, mnist" in " ".join(text.split())  # names, listed
        assert "small_cnn, small_cnn_wide, wrn-28-10" in " ".join(text.split())
    assert flags
