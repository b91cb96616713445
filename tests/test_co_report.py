"""experiments/catastrophic_overfitting.py reads its runs right: the collapse epoch, the first
delta-energy alarm (not the PGD-collapse alarm) and whether that alarm warned in time."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import experiment_script


@pytest.fixture(scope="module")
def co():
    return experiment_script("catastrophic_overfitting")


def _history(pgd: list[float], alarms: dict[int, str] | None = None) -> list[dict]:
    alarms = alarms or {}
    return [
        {"epoch": e, "val_pgd_acc": acc, "alarm": alarms.get(e)}
        for e, acc in enumerate(pgd, start=1)
    ]


def test_collapse_is_the_first_epoch_below_a_third_of_the_best_before_it(co):
    assert co.collapse_epoch(_history([0.3, 0.5, 0.4, 0.16, 0.1])) == 4
    assert co.collapse_epoch(_history([0.3, 0.5, 0.4, 0.2])) is None  # 0.2 > 0.5 / 3


def test_only_a_delta_energy_alarm_counts_as_a_warning(co):
    pgd = "PGD validation accuracy collapsed to 0.1 (best so far 0.5): catastrophic overfitting"
    de = "delta energy dE(x) = -3.8 diverged from its plateau -1.2: it drops"
    assert co.first_delta_energy_alarm(_history([0.5, 0.1], {2: pgd})) is None
    assert co.first_delta_energy_alarm(_history([0.5, 0.5, 0.1], {2: de, 3: f"{pgd}; {de}"})) == 2


@pytest.mark.parametrize(
    "alarm, collapse, verdict",
    [
        (10, 11, "1 epoch early"),
        (4, 9, "5 epochs early"),
        (5, 5, "with the collapse"),
        (7, 5, "late"),
        (None, 5, "missed"),
        (6, None, "false alarm"),
        (None, None, "-"),
    ],
)
def test_the_warning_column(co, alarm, collapse, verdict):
    assert co.warning(alarm, collapse) == verdict


def test_the_der_grid_covers_every_point_and_form_with_its_own_run_folder(co):
    grid = co.der_grid()
    assert len(grid) == len(co.DER_POINTS) * len(co.DER_FORMS) == 9
    folders = {co._slug(label) for label in grid}
    assert len(folders) == 9
    assert "fgsm-der-uniform-relative" in folders


def test_the_archived_fgsm_der_labels_keep_the_squared_form_now_that_joint_is_the_default(co):
    for flags in (co.METHODS["FGSM+DER"], *co.der_variants([3, 10]).values()):
        assert flags[flags.index("--der-form") + 1] == "squared"
        assert "--der-at" not in flags


def test_one_der_variant_can_be_picked_and_a_misspelt_one_is_refused(co):
    assert list(co.der_grid(["pgd2,joint"])) == ["FGSM+DER[pgd2,joint]"]
    with pytest.raises(SystemExit, match="unknown DER variant"):
        co.der_grid(["pgd3,joint"])


def test_der_goes_on_any_single_step_base_with_the_bases_own_flags(co):
    grid = co.der_grid(["pgd2,joint"], ["RS-FGSM", "N-FGSM"])
    assert list(grid) == ["RS-FGSM+DER[pgd2,joint]", "N-FGSM+DER[pgd2,joint]"]
    flags = grid["N-FGSM+DER[pgd2,joint]"]
    assert flags[:2] == ["--method", "n_fgsm"]
    assert flags[flags.index("--der-at") + 1] == "pgd2"
    assert co._slug("RS-FGSM+DER[pgd2,joint]") == "rs-fgsm-der-pgd2-joint"
    with pytest.raises(SystemExit, match="not one of"):
        co.der_grid(["pgd2,joint"], ["PGD-2"])


def test_the_cost_matched_pgd2_baseline_steps_half_the_ball(co):
    flags = co.method_flags(co.METHODS["PGD-2"], 0.15)
    assert flags[flags.index("--alpha") + 1] == "0.075"
    assert flags[flags.index("--attack-steps") + 1] == "2"


def test_a_report_only_sweep_plots_the_runs_it_has_and_names_the_rest(
    co, tmp_path, monkeypatch, capsys
):
    archive = tmp_path / "archive"
    archive.mkdir()
    hist = [dict(h, train_acc=0.5, delta_energy=-0.1) for h in _history([0.3, 0.4, 0.1])]
    lines = "\n".join(json.dumps(h) for h in hist) + "\n"
    (archive / "sweep-rs-fgsm-eps0.25-seed0.jsonl").write_text(lines)
    argv = ["catastrophic_overfitting.py", "--sweep", "0.25", "0.3", "--methods", "RS-FGSM"]
    argv += ["--seeds", "0", "--report-only", "--runs", str(tmp_path / "runs")]
    argv += ["--archive", str(archive), "--sweep-figure", str(tmp_path / "sweep.png")]
    monkeypatch.setattr(sys, "argv", argv)
    co.main()
    out = capsys.readouterr().out
    assert "not trained yet: sweep-rs-fgsm-eps0.3-seed0" in out
    assert "RS-FGSM eps 0.25 seed 0" in out and "0.10/0.50" in out
    assert (tmp_path / "sweep.png").is_file()
