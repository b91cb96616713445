"""A slow evaluation's per-batch results on disk, so an interrupted one resumes where it stopped.

AutoAttack on 10,000 Fashion-MNIST images takes about two and a half hours on a 2-core CPU, longer
than a working session; with the ledger each finished batch is kept, and the next run (the same
command) attacks only the batches not yet recorded. A ledger belongs to one exact evaluation: the
model's weights, the attack and its settings, the data and how it is batched. Any change gives a
different key, and so a fresh ledger: a result is never reused for something it was not measured on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)


def weights_fingerprint(model: nn.Module) -> str:
    """sha256 of every parameter and buffer (names, shapes, dtypes and values), 16 hex digits."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(
            tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        )
    return digest.hexdigest()[:16]


class LedgerUnreadable(ValueError):
    """A ledger file that is missing, corrupt or not in the ledger's format."""


def read_ledger_file(path: Path) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """A ledger file's identity and its batches by index, every field checked for its kind."""
    try:
        saved = json.loads(Path(path).read_text())
        batches = {int(i): dict(entry) for i, entry in saved["batches"].items()}
        for entry in batches.values():
            entry.update(
                correct=int(entry["correct"]),
                seen=int(entry["seen"]),
                seconds=float(entry["seconds"]),
                device=str(entry["device"]),
            )
        return dict(saved["identity"]), batches
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise LedgerUnreadable(str(err)) from err


class BatchLedger:
    """Each batch's correct count, size, seconds and device, saved after every batch to
    ``folder/<key>.json``.

    ``identity``: everything the results depend on besides the weights (attack, epsilon, norm,
    dataset, batch size); it is stored in the file, and a file whose identity differs is ignored.
    A ledger that cannot be read (corrupt, truncated) is started afresh with a warning; one that
    cannot be written only costs the resumption.
    """

    def __init__(self, folder: Path, model: nn.Module, identity: dict[str, Any]):
        self.identity = {"weights": weights_fingerprint(model), **identity}
        key = hashlib.sha256(json.dumps(self.identity, sort_keys=True).encode()).hexdigest()[:20]
        self.path = Path(folder) / f"{key}.json"
        self.batches: dict[int, dict[str, Any]] = self._read()
        self.used: set[int] = set()  # the batches this evaluation read or recorded
        self.resumed = 0  # of which read: images not attacked again

    def get(self, index: int, size: int) -> dict[str, Any] | None:
        """Batch ``index``'s record (correct, seen, seconds, device), if made at this size."""
        entry = self.batches.get(index)
        if entry is None or entry["seen"] != size:
            return None
        self.used.add(index)
        self.resumed += size
        return entry

    def record(self, index: int, correct: int, seen: int, seconds: float, device: str) -> None:
        self.batches[index] = {
            "correct": correct,
            "seen": seen,
            "seconds": seconds,
            "device": device,
        }
        self.used.add(index)
        self._write()

    def spent(self) -> tuple[float, str]:
        """Seconds the batches this evaluation used took, over every run, and on what devices."""
        entries = [self.batches[i] for i in sorted(self.used)]
        devices = sorted({e["device"] for e in entries})
        return round(sum(e["seconds"] for e in entries), 1), " + ".join(devices)

    def _read(self) -> dict[int, dict[str, Any]]:
        if not self.path.is_file():
            return {}
        try:
            identity, batches = read_ledger_file(self.path)
        except LedgerUnreadable as err:
            log.warning("ignoring the unreadable evaluation ledger %s (%s)", self.path, err)
            return {}
        return batches if identity == self.identity else {}

    def _write(self) -> None:
        """Atomically (a temporary file moved into place), so a kill mid-write loses nothing."""
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        payload = {"identity": self.identity, "batches": self.batches}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(payload, indent=1))
            os.replace(tmp, self.path)
        except OSError as err:
            log.warning("could not save the evaluation ledger %s (%s)", self.path, err)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
