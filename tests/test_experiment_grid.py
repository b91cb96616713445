"""experiments/grid.py: finished runs are archived, archived runs are never trained again, and
runs side by side share the CPU cores instead of each taking all of them."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

from conftest import FASHION_MNIST_DIR

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def grid():
    spec = importlib.util.spec_from_file_location("grid", ROOT / "experiments" / "grid.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_training(calls: list[dict]):
    """Stands in for ``python -m hubmodels train``: writes two epochs and a ``last/`` folder."""

    def run(command, check, stdout, stderr, env):
        out = Path(command[command.index("--output-dir") + 1])
        calls.append({"out": out, "env": env})
        (out / "last").mkdir(parents=True, exist_ok=True)
        (out / "last" / "config.json").write_text("{}")
        epochs = [{"epoch": e, "val_pgd_acc": 0.5 - 0.1 * e} for e in (1, 2)]
        (out / "metrics.jsonl").write_text("\n".join(json.dumps(h) for h in epochs) + "\n")

    return run


def test_a_finished_run_is_archived_and_later_read_from_the_archive(grid, tmp_path, monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(subprocess, "run", _fake_training(calls))
    archive = tmp_path / "archive"
    first = grid.ensure_run(tmp_path / "runs", "fgsm-seed0", ["--method", "fgsm"], archive=archive)
    assert len(calls) == 1
    assert (archive / "fgsm-seed0.jsonl").read_text() == (
        tmp_path / "runs" / "fgsm-seed0" / "metrics.jsonl"
    ).read_text()

    # A new machine: runs/ is gone, the archive (committed) is still there.
    again = grid.ensure_run(
        tmp_path / "new-runs", "fgsm-seed0", ["--method", "fgsm"], archive=archive
    )
    assert again == first
    assert len(calls) == 1, "an archived run was trained again"
    assert not (tmp_path / "new-runs" / "fgsm-seed0").exists()


def test_without_an_archive_every_unfinished_run_trains(grid, tmp_path, monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(subprocess, "run", _fake_training(calls))
    grid.ensure_run(tmp_path / "runs", "a", [])
    grid.ensure_run(tmp_path / "runs", "a", [])  # finished: skipped
    grid.ensure_run(tmp_path / "runs", "b", [])
    assert [c["out"].name for c in calls] == ["a", "b"]


def test_runs_side_by_side_share_the_cores(grid, tmp_path, monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(subprocess, "run", _fake_training(calls))
    monkeypatch.setattr(grid.os, "cpu_count", lambda: 4)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    histories = grid.ensure_runs(tmp_path / "runs", {"a": [], "b": []}, jobs=2)
    assert set(histories) == {"a", "b"}
    assert {c["env"]["OMP_NUM_THREADS"] for c in calls} == {"2"}
    grid.ensure_runs(tmp_path / "runs", {"c": []}, jobs=8)  # more runs than cores: one thread each
    assert calls[-1]["env"]["OMP_NUM_THREADS"] == "1"


def test_report_only_reads_an_archived_run_without_training(grid, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("report-only must not train")

    monkeypatch.setattr(subprocess, "run", refuse)
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "x.jsonl").write_text(json.dumps({"epoch": 1, "val_pgd_acc": 0.4}) + "\n")
    assert grid.ensure_run(tmp_path / "runs", "x", [], train=False, archive=archive) == [
        {"epoch": 1, "val_pgd_acc": 0.4}
    ]


def test_a_thread_count_set_by_the_caller_wins(grid, tmp_path, monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(subprocess, "run", _fake_training(calls))
    monkeypatch.setattr(grid.os, "cpu_count", lambda: 4)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    grid.ensure_runs(tmp_path / "runs", {"a": []}, jobs=1)
    assert calls[0]["env"]["OMP_NUM_THREADS"] == "1"


def test_a_report_with_nothing_trained_yet_writes_no_figure_and_says_so(grid, tmp_path, capsys):
    grid.plot_runs({}, tmp_path / "empty.png", "nothing yet")
    assert not (tmp_path / "empty.png").exists()
    assert "no runs to plot" in capsys.readouterr().out


@pytest.mark.skipif(
    not FASHION_MNIST_DIR.is_dir(),
    reason="needs `apt-get install dataset-fashion-mnist` (.ci/run installs it)",
)
def test_best_and_last_checkpoints_are_attacked_on_test_images_once(grid, tmp_path):
    import torch

    from hubmodels import RobustClassifier

    runs, archive = tmp_path / "runs", tmp_path / "archive"
    torch.manual_seed(0)
    threat = {"norm": "linf", "epsilon": 0.1}
    for which in ("best", "last"):
        model = RobustClassifier(dataset="fashion-mnist", threat_model=threat)
        model.save_pretrained(runs / "r" / which)
    result = grid.checkpoint_test_accuracy(runs, "r", archive, images=40, steps=2)
    for which in ("best", "last"):
        assert 0.0 <= result[which]["pgd"] <= result[which]["clean"] <= 1.0
    assert json.loads((archive / "r.test.json").read_text()) == result
    # A new machine without the weights reads the cached result; other settings need weights.
    assert grid.checkpoint_test_accuracy(tmp_path / "gone", "r", archive, images=40, steps=2) == (
        result
    )
    assert grid.checkpoint_test_accuracy(tmp_path / "gone", "r", archive, images=80) is None
