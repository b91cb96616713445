"""The trainer on real Fashion-MNIST (Debian package dataset-fashion-mnist), kept tiny."""

import json
import subprocess

import pytest
import torch
from safetensors.torch import load_file

from conftest import ACCELERATE_CPU_2, FASHION_MNIST_DIR
from hubmodels import RobustClassifier
from hubmodels.training.config import TrainConfig
from hubmodels.training.trainer import train

pytestmark = pytest.mark.skipif(
    not FASHION_MNIST_DIR.is_dir(),
    reason="needs `apt-get install dataset-fashion-mnist` (.ci/run installs it)",
)

TINY = dict(
    dataset="fashion-mnist",
    val_size=200,
    train_subset=512,
    batch_size=64,
    eval_batch_size=200,
    attack_steps=2,
    val_attack_steps=3,
    epsilon=0.1,
    energy_subset=64,
    lr=0.05,
    seed=0,
)


def _config(tmp_path, name, **overrides) -> TrainConfig:
    return TrainConfig(**{**TINY, "output_dir": str(tmp_path / name), **overrides})


class Interrupted(Exception):
    pass


@pytest.mark.slow
def test_a_short_real_run_learns_and_writes_everything(tmp_path):
    config = _config(tmp_path, "run", method="trades", der_lambda=0.5, epochs=2, grad_accum=2)
    best = train(config)
    history = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [h["epoch"] for h in history] == [1, 2]
    keys = ("val_clean_acc", "val_pgd_acc", "delta_energy", "delta_energy_joint", "logit_scale")
    for key in (*keys, "alarm"):
        assert key in history[-1]
    # 10 classes: chance is 0.1; two tiny epochs of TRADES already get well above it.
    assert max(h["val_clean_acc"] for h in history) > 0.4
    assert (tmp_path / "run" / "training.png").stat().st_size > 10_000
    model = RobustClassifier.from_pretrained(best)
    assert model.config["training"]["method"] == "trades+der"
    assert model.config["metrics"]["val_clean_acc"] == pytest.approx(
        max(history, key=lambda h: h["val_pgd_acc"])["val_clean_acc"], abs=1e-4
    )
    assert model.config["class_names"][7] == "Sneaker"
    assert (tmp_path / "run" / "last" / "model.safetensors").is_file()
    # A fresh run samples at once: its prior was fitted on the 512 images it trained on.
    for folder in ("best", "last"):
        fitted = RobustClassifier.from_pretrained(tmp_path / "run" / folder)
        assert fitted.prior is not None, folder
    sampled = model.sample(["Sneaker"], 3, seed=0, steps=2)
    assert len(sampled.images) == 3 and sampled.labels == [7, 7, 7]


@pytest.mark.slow
def test_der_variants_train_and_are_recorded_in_the_card(tmp_path):
    """FGSM + DER measured at a uniform point, scale-free, attacking with batch statistics."""
    config = _config(
        tmp_path,
        "variant",
        method="fgsm",
        der_lambda=1.0,
        der_form="relative",
        der_at="uniform",
        attack_bn="train",
        epochs=1,
        fit_prior=False,
    )
    model = RobustClassifier.from_pretrained(train(config))
    recipe = model.config["training"]
    assert (recipe["der_form"], recipe["der_at"], recipe["attack_bn"]) == (
        "relative",
        "uniform",
        "train",
    )
    assert model.config["metrics"]["val_clean_acc"] > 0.2


@pytest.mark.slow
def test_no_fit_prior_leaves_the_checkpoints_without_one(tmp_path):
    best = train(_config(tmp_path, "bare", method="standard", epochs=1, fit_prior=False))
    assert RobustClassifier.from_pretrained(best).prior is None


@pytest.mark.slow
def test_resume_after_an_interruption_matches_an_uninterrupted_run(tmp_path):
    straight = train(_config(tmp_path, "straight", method="pgd_at", epochs=2, ema_decay=0.9))

    def stop_after_first_epoch(epoch, record):
        if epoch == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(
            _config(tmp_path, "resumed", method="pgd_at", epochs=2, ema_decay=0.9),
            on_epoch_end=stop_after_first_epoch,
        )
    resumed = train(
        _config(tmp_path, "resumed", method="pgd_at", epochs=2, ema_decay=0.9, resume=True)
    )
    for folder in ("best", "last"):
        a = load_file(str(straight.parent / folder / "model.safetensors"))
        b = load_file(str(resumed.parent / folder / "model.safetensors"))
        assert all(torch.equal(a[k], b[k]) for k in a), folder
    with pytest.raises(
        ValueError, match=r"cannot resume .* with different settings \(lr: 0.05 -> 0.1"
    ):
        train(
            _config(
                tmp_path, "resumed", method="pgd_at", epochs=2, ema_decay=0.9, lr=0.1, resume=True
            )
        )
    lines = lambda run: (tmp_path / run / "metrics.jsonl").read_text().splitlines()  # noqa: E731
    strip = lambda line: {k: v for k, v in json.loads(line).items() if k != "seconds"}  # noqa: E731
    assert [strip(x) for x in lines("straight")] == [strip(x) for x in lines("resumed")]


@pytest.mark.slow
def test_accelerate_launch_on_two_cpu_processes(tmp_path):
    out = tmp_path / "ddp"
    command = [
        *ACCELERATE_CPU_2,
        "train",
        "--method",
        "weat_adv",
        "--epochs",
        "1",
        "--output-dir",
        str(out),
        *[f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()],
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    history = [json.loads(line) for line in (out / "metrics.jsonl").open()]
    assert len(history) == 1
    model = RobustClassifier.from_pretrained(out / "best")
    assert model.config["training"]["method"] == "weat_adv"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"method": "weat_adw"}, "unknown method 'weat_adw'"),
        ({"der_form": "cubic"}, "unknown DER form 'cubic'"),
        ({"der_at": "corner"}, "unknown DER point 'corner'"),
        ({"attack_bn": "batch"}, "attack_bn is eval or train"),
        ({"attack_bn": "train", "method": "pgd_at"}, "single-step methods only"),
        ({"schedule": "cosine"}, "unknown schedule 'cosine'"),
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"epsilon": -0.1}, "must be non-negative"),
        ({"label_noise": 1.5}, "label_noise is a fraction"),
        ({"label_smoothing": 1.0}, r"label_smoothing is in \[0, 1\)"),
        ({"label_smoothing": 0.1, "method": "trades"}, "label_smoothing applies to"),
    ],
)
def test_a_misspelt_recipe_fails_when_the_config_is_built(setting, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**setting)


def test_a_run_saved_before_a_setting_existed_resumes_with_its_default(tmp_path):
    """run_config.json of an older run lacks later fields (label_noise); they had the default."""
    from hubmodels.training.trainer import _check_same_run

    config = _config(tmp_path, "old", method="pgd_at", epochs=2)
    saved = {k: v for k, v in config.to_dict().items() if k != "label_noise"}
    (tmp_path / "run_config.json").write_text(json.dumps(saved))
    _check_same_run(tmp_path / "run_config.json", config)  # no error
    noisy = _config(tmp_path, "old", method="pgd_at", epochs=2, label_noise=0.2)
    with pytest.raises(ValueError, match=r"label_noise: 0.0 -> 0.2"):
        _check_same_run(tmp_path / "run_config.json", noisy)


def test_a_der_run_saved_before_der_form_existed_resumes_as_squared(tmp_path):
    """The DER form's default changed (squared -> joint): a run whose run_config.json has no
    der_form trained with the squared one, so resuming it with today's default is refused."""
    from hubmodels.training.trainer import _check_same_run

    squared = _config(
        tmp_path, "old", method="pgd_at", epochs=2, der_lambda=1.0, der_form="squared"
    )
    saved = {k: v for k, v in squared.to_dict().items() if k != "der_form"}
    (tmp_path / "run_config.json").write_text(json.dumps(saved))
    _check_same_run(tmp_path / "run_config.json", squared)  # no error
    default = _config(tmp_path, "old", method="pgd_at", epochs=2, der_lambda=1.0)
    assert default.der_form == "joint"
    with pytest.raises(ValueError, match=r"der_form: 'squared' -> 'joint'"):
        _check_same_run(tmp_path / "run_config.json", default)


def test_noisy_labels_reach_training_and_the_card(tmp_path):
    best = train(
        _config(tmp_path, "noisy", method="standard", epochs=1, label_noise=0.25, fit_prior=False)
    )
    card = (best / "README.md").read_text()
    assert "| label_noise | 0.2500 |" in card
    assert json.loads((best / "config.json").read_text())["training"]["label_noise"] == 0.25


def test_label_smoothing_reaches_the_card_only_when_it_is_used():
    from hubmodels.training.trainer import recipe

    smoothed = recipe(TrainConfig(method="pgd_at", label_smoothing=0.3))
    assert smoothed["label_smoothing"] == 0.3
    assert "label_smoothing" not in recipe(TrainConfig(method="pgd_at"))
