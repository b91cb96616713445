"""experiments/robust_overfitting.py names its runs and measures the overfitting gap right."""

from __future__ import annotations

import json
import math
import sys

import pytest

from conftest import experiment_script


@pytest.fixture(scope="module")
def ro():
    return experiment_script("robust_overfitting")


def _history(pgd: list[float]) -> list[dict]:
    return [
        dict(epoch=i + 1, val_pgd_acc=a, train_acc=0.9, delta_energy=-0.1, alarm=None)
        for i, a in enumerate(pgd)
    ]


def test_the_smoothed_gap_sees_a_decline_and_ignores_one_lucky_epoch(ro):
    flat_with_a_lucky_epoch = _history([0.60] * 10 + [0.66] + [0.60] * 9)
    declining = _history(
        [0.60 + 0.01 * i for i in range(10)] + [0.69 - 0.01 * i for i in range(10)]
    )
    plain_gap = 0.66 - 0.60
    assert ro.smoothed_gap(flat_with_a_lucky_epoch) == pytest.approx(plain_gap / 5)
    # best window 0.67 0.68 0.69 0.69 0.68, last 0.64 ... 0.60
    assert ro.smoothed_gap(declining) == pytest.approx(0.682 - 0.62)
    assert math.isnan(ro.smoothed_gap(_history([0.5, 0.6])))


def test_the_report_reads_archived_runs_by_architecture_and_der_variant(
    ro, tmp_path, monkeypatch, capsys
):
    archive = tmp_path / "archive"
    archive.mkdir()
    for name in (
        "pgd-at-n500-noaug-small-cnn-wide-eps0.2-seed1",
        "pgd-at-der-pgd2-joint-n500-noaug-small-cnn-wide-eps0.2-seed1",
    ):
        lines = [json.dumps(h) for h in _history([0.5, 0.7, 0.6])]
        (archive / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    argv = ["robust_overfitting.py", "--architecture", "small_cnn_wide", "--train-subset", "500"]
    argv += ["--no-augment", "--epochs", "3", "--seeds", "1", "--der", "pgd2,joint"]
    argv += ["--methods", "PGD-AT", "PGD-AT+DER", "TRADES", "--report-only", "--epsilon", "0.2"]
    argv += ["--runs", str(tmp_path / "runs"), "--archive", str(archive)]
    argv += ["--figure", str(tmp_path / "ro.png")]
    monkeypatch.setattr(sys, "argv", argv)
    ro.main()
    out = capsys.readouterr().out
    assert "not trained yet: trades-n500-noaug-small-cnn-wide-eps0.2-seed1" in out
    assert "| PGD-AT | 1 | 0.700 | 2 | 0.600 | 0.100 |" in out
    assert "| PGD-AT+DER[pgd2,joint] | 1 |" in out
    assert (tmp_path / "ro.png").is_file()


def test_label_noise_names_its_runs_and_reaches_the_trainer(ro, tmp_path, monkeypatch, capsys):
    archive = tmp_path / "archive"
    archive.mkdir()
    name = "pgd-at-n500-noaug-small-cnn-wide-noise0.2-seed0"
    (archive / f"{name}.jsonl").write_text(
        "\n".join(json.dumps(h) for h in _history([0.5, 0.7, 0.6])) + "\n"
    )
    argv = ["robust_overfitting.py", "--architecture", "small_cnn_wide", "--train-subset", "500"]
    argv += ["--no-augment", "--epochs", "3", "--methods", "PGD-AT", "--label-noise", "0.2"]
    argv += ["--report-only", "--runs", str(tmp_path / "runs"), "--archive", str(archive)]
    argv += ["--figure", str(tmp_path / "ro.png")]
    monkeypatch.setattr(sys, "argv", argv)
    seen = {}
    real = ro.ensure_runs

    def spy(runs, commands, *args, **kwargs):
        seen.update(commands)
        return real(runs, commands, *args, **kwargs)

    monkeypatch.setattr(ro, "ensure_runs", spy)
    ro.main()
    assert "| PGD-AT | 0 | 0.700 | 2 | 0.600 | 0.100 |" in capsys.readouterr().out
    flags = seen[name]
    assert flags[flags.index("--label-noise") + 1] == "0.2"


def test_der_at_other_weights_gets_its_own_label_flags_and_folder(ro, tmp_path, monkeypatch):
    argv = ["robust_overfitting.py", "--epochs", "3", "--methods", "PGD-AT+DER"]
    argv += ["--der", "adversarial,joint", "adversarial,squared", "--der-lambdas", "3"]
    argv += ["--report-only"]
    argv += ["--runs", str(tmp_path / "runs"), "--archive", str(tmp_path / "archive")]
    argv += ["--figure", str(tmp_path / "ro.png")]
    monkeypatch.setattr(sys, "argv", argv)
    seen = {}

    def trained(runs, commands, *args, **kwargs):
        seen.update(commands)
        return {name: _history([0.5, 0.7, 0.6]) for name in commands}

    monkeypatch.setattr(ro, "drop_untrained", lambda grid, *a: None)
    monkeypatch.setattr(ro, "ensure_runs", trained)
    ro.main()
    lam3 = seen["pgd-at-der3-adversarial-joint-n2000-seed0"]
    lam1 = seen["pgd-at-der-adversarial-joint-n2000-seed0"]
    for flags, lam in ((lam3, "3.0"), (lam1, "1")):
        assert flags[flags.index("--der-lambda") + 1] == lam
        assert flags[flags.index("--der-form") + 1] == "joint"
    # the squared variant keeps the folder of the runs made before --der, with an explicit form
    # (the trainer's default is now joint)
    for name in ("pgd-at-der-n2000-seed0", "pgd-at-der3-n2000-seed0"):
        flags = seen[name]
        assert flags[flags.index("--der-form") + 1] == "squared"
        assert "--der-at" not in flags
    assert len(seen) == 4


def test_label_smoothing_controls_get_their_own_label_flags_and_folder(ro, tmp_path, monkeypatch):
    argv = ["robust_overfitting.py", "--epochs", "3", "--methods", "PGD-AT"]
    argv += ["--label-smoothings", "0.1", "0.3", "--report-only"]
    argv += ["--runs", str(tmp_path / "runs"), "--archive", str(tmp_path / "archive")]
    argv += ["--figure", str(tmp_path / "ro.png")]
    monkeypatch.setattr(sys, "argv", argv)
    seen = {}

    def trained(runs, commands, *args, **kwargs):
        seen.update(commands)
        return {name: _history([0.5, 0.7, 0.6]) for name in commands}

    monkeypatch.setattr(ro, "drop_untrained", lambda grid, *a: None)
    monkeypatch.setattr(ro, "ensure_runs", trained)
    ro.main()
    assert sorted(seen) == [
        "pgd-at-ls0.1-n2000-seed0",
        "pgd-at-ls0.3-n2000-seed0",
        "pgd-at-n2000-seed0",
    ]
    flags = seen["pgd-at-ls0.3-n2000-seed0"]
    assert flags[flags.index("--label-smoothing") + 1] == "0.3"
    assert flags[flags.index("--method") + 1] == "pgd_at"
    assert "--label-smoothing" not in seen["pgd-at-n2000-seed0"]
