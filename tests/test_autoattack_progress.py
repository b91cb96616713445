"""experiments/autoattack_progress.py: AutoAttack's full-test-set progress, read from ledgers."""

from conftest import experiment_script, tiny_classifier
from hubmodels.metrics.batch_ledger import BatchLedger

progress = experiment_script("autoattack_progress")
IDENTITY = {"attack": "AutoAttack standard", "eps": 0.1, "dataset": "toy", "batch_size": 500}


def test_a_row_adds_up_the_batches_of_the_models_own_ledger(tmp_path):
    model, other = tiny_classifier(0), tiny_classifier(1)
    model.update_config(metrics={"autoattack_acc": 0.7, "autoattack_images": 2000})
    ledger = BatchLedger(tmp_path, model, IDENTITY)
    ledger.record(0, correct=400, seen=500, seconds=600.0, device="cpu (2 threads)")
    ledger.record(1, correct=350, seen=500, seconds=90.0, device="NVIDIA H200")
    BatchLedger(tmp_path, other, IDENTITY).record(0, 1, 500, 1.0, "cpu (2 threads)")
    (tmp_path / "broken.json").write_text('{"identity": ')  # skipped, not fatal

    found = progress.read_ledgers(tmp_path)
    assert len(found) == 2
    row = progress.progress_row("mine", model, found[ledger.identity["weights"]])
    assert row == (
        "| mine | 2 | 1,000 of 10,000 | 75.00% | 70.00% on 2,000 | "
        "690 s on NVIDIA H200 + cpu (2 threads) |"
    )


def test_the_fullest_ledger_of_a_model_wins_and_a_model_without_one_shows_none(tmp_path):
    model = tiny_classifier(0)
    small = BatchLedger(tmp_path, model, IDENTITY)
    small.record(0, 100, 500, 1.0, "cpu")
    bigger = BatchLedger(tmp_path, model, {**IDENTITY, "batch_size": 250})
    for index in range(3):
        bigger.record(index, 200, 250, 1.0, "cpu")
    saved = progress.read_ledgers(tmp_path)[small.identity["weights"]]
    assert len(saved["batches"]) == 3
    assert progress.progress_row("mine", model, None) == "| mine | 0 | 0 of 10,000 | – | – | – |"
