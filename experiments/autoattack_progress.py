"""How far AutoAttack on the full test set has got for each preset, read from tracked ledgers.

AutoAttack on all 10,000 Fashion-MNIST test images costs 3-4 hours a robust preset on the
2-core CPU (Square's 5,000 queries on every image still standing take most of it), more than a
working session. So the evaluation keeps each finished batch of 500 in a ledger under version
control, and every session (or a lent GPU) adds batches with the same command:

    python -m hubmodels eval --model fmnist-smallcnn-der --pgd-steps \\
        --ledger-dir experiments/results/autoattack-10k --save-to runs/autoattack-10k/der

This script says, for each preset, how many batches are in, the AutoAttack accuracy on the
images attacked so far, and what they cost on which devices:

    python experiments/autoattack_progress.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hubmodels import RobustClassifier, list_presets
from hubmodels.metrics.batch_ledger import LedgerUnreadable, read_ledger_file, weights_fingerprint

LEDGERS = Path(__file__).resolve().parent / "results" / "autoattack-10k"
TEST_IMAGES = 10_000


def read_ledgers(folder: Path) -> dict[str, dict]:
    """Ledgers ({"identity", "batches"}) by the fingerprint of the weights they were measured on;
    where one model has several (another batch size or radius), the one with the most batches."""
    found: dict[str, dict] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            identity, batches = read_ledger_file(path)
            key = identity["weights"]
        except (LedgerUnreadable, KeyError) as err:
            print(f"skipping the unreadable ledger {path} ({err})")
            continue
        if key not in found or len(batches) > len(found[key]["batches"]):
            found[key] = {"identity": identity, "batches": batches}
    return found


def progress_row(name: str, model: RobustClassifier, saved: dict | None) -> str:
    """One table row: batches and images done, accuracy so far, and the stored partial number."""
    metrics = model.config["metrics"]
    stored = metrics.get("autoattack_acc")
    # Checkpoints evaluated before the count was recorded attacked their whole test set.
    images = metrics.get("autoattack_images", TEST_IMAGES)
    stored_text = "–" if stored is None else f"{stored:.2%} on {images:,}"
    batches = list((saved or {"batches": {}})["batches"].values())
    seen = sum(b["seen"] for b in batches)
    if not seen:
        return f"| {name} | 0 | 0 of {TEST_IMAGES:,} | – | {stored_text} | – |"
    correct = sum(b["correct"] for b in batches)
    seconds = sum(b["seconds"] for b in batches)
    devices = " + ".join(sorted({b["device"] for b in batches}))
    return (
        f"| {name} | {len(batches)} | {seen:,} of {TEST_IMAGES:,} | {correct / seen:.2%} | "
        f"{stored_text} | {seconds:,.0f} s on {devices} |"
    )


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ledgers", type=Path, default=LEDGERS, help="the ledger folder")
    parser.add_argument("--presets", nargs="*", help="default: every preset")
    args = parser.parse_args(argv)
    ledgers = read_ledgers(args.ledgers) if args.ledgers.is_dir() else {}
    lines = [
        "| preset | batches | images attacked | AutoAttack so far | in the checkpoint | cost |",
        "|---|---|---|---|---|---|",
    ]
    for name in args.presets or list_presets():
        model = RobustClassifier.from_pretrained(name)
        lines.append(progress_row(name, model, ledgers.get(weights_fingerprint(model))))
    table = "\n".join(lines)
    print(table)
    return table


if __name__ == "__main__":
    main()
