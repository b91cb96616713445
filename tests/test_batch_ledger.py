"""The ledger that lets a slow evaluation (AutoAttack) resume after an interruption."""

import json
import logging

import pytest
import torch

from conftest import tiny_classifier
from hubmodels.cache import cache_dir
from hubmodels.metrics import accuracy
from hubmodels.metrics.batch_ledger import BatchLedger, weights_fingerprint
from hubmodels.metrics.robust_accuracy import device_name

IDENTITY = {"attack": "noise", "eps": 0.1, "dataset": "toy", "batch_size": 4}


def _batches(n=12, size=4):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g)
    return [(x[i : i + size], y[i : i + size]) for i in range(0, n, size)]


class CountingAttack:
    """Adds fixed noise; counts the images it attacks and can fail at a given call."""

    def __init__(self, fail_at=None):
        self.calls, self.images, self.fail_at = 0, 0, fail_at

    def __call__(self, model, x, y):
        self.calls += 1
        if self.calls == self.fail_at:
            raise KeyboardInterrupt  # the session ends mid-evaluation
        self.images += len(y)
        g = torch.Generator().manual_seed(int(y.sum()))
        return (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(0, 1)


def test_an_interrupted_evaluation_resumes_and_gives_the_uninterrupted_number(tmp_path):
    model, batches = tiny_classifier().eval(), _batches()
    expected = accuracy(model, batches, CountingAttack())
    with pytest.raises(KeyboardInterrupt):
        ledger = BatchLedger(tmp_path, model, IDENTITY)
        accuracy(model, batches, CountingAttack(fail_at=3), ledger=ledger)
    attack = CountingAttack()
    ledger = BatchLedger(tmp_path, model, IDENTITY)
    assert sorted(ledger.batches) == [0, 1]  # the two finished batches were kept
    assert accuracy(model, batches, attack, ledger=ledger) == expected
    assert attack.images == 4 and ledger.resumed == 8  # only the third batch attacked again
    seconds, device = ledger.spent()
    assert seconds >= 0 and device == device_name(torch.device("cpu"))


def test_other_weights_or_settings_never_reuse_a_ledger(tmp_path):
    model, other = tiny_classifier().eval(), tiny_classifier().eval()
    with torch.no_grad():
        next(other.parameters()).add_(0.01)
    assert weights_fingerprint(model) != weights_fingerprint(other)
    accuracy(model, _batches(), CountingAttack(), ledger=BatchLedger(tmp_path, model, IDENTITY))
    assert BatchLedger(tmp_path, other, IDENTITY).batches == {}
    assert BatchLedger(tmp_path, model, {**IDENTITY, "eps": 0.2}).batches == {}
    assert len(BatchLedger(tmp_path, model, IDENTITY).batches) == 3


def test_a_batch_cut_by_another_limit_is_attacked_again(tmp_path):
    model, batches = tiny_classifier().eval(), _batches()
    accuracy(
        model, batches, CountingAttack(), limit=6, ledger=BatchLedger(tmp_path, model, IDENTITY)
    )
    attack = CountingAttack()
    expected = accuracy(model, batches, CountingAttack(), limit=12)
    assert (
        accuracy(model, batches, attack, ledger=BatchLedger(tmp_path, model, IDENTITY)) == expected
    )
    assert attack.images == 8  # batch 0 kept; batch 1 (2 of 4 images before) and 2 attacked


def test_a_corrupt_ledger_is_ignored_with_a_warning_and_rewritten(tmp_path, caplog):
    model, batches = tiny_classifier().eval(), _batches()
    ledger = BatchLedger(tmp_path, model, IDENTITY)
    ledger.path.write_text('{"identity": ')  # cut off mid-write by something else
    with caplog.at_level(logging.WARNING):
        fresh = BatchLedger(tmp_path, model, IDENTITY)
    assert fresh.batches == {} and "unreadable evaluation ledger" in caplog.text
    accuracy(model, batches, CountingAttack(), ledger=fresh)
    assert len(json.loads(fresh.path.read_text())["batches"]) == 3


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HUBMODELS_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("HUBMODELS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "hubmodels"


def test_the_recorded_device_names_its_thread_count(monkeypatch):
    for threads, expected in ((1, "cpu (1 thread)"), (2, "cpu (2 threads)")):
        monkeypatch.setattr(torch, "get_num_threads", lambda n=threads: n)
        assert device_name(torch.device("cpu")) == expected
