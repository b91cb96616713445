"""Print the checkpoints.md table rows and per-preset facts of the installed presets.

Everything comes from the preset folders (config.json, metrics.jsonl, the weights file), so the
catalogue quotes exactly what was measured; tests/test_presets.py checks that it still does.

    python experiments/catalogue.py > /tmp/rows.md   # then paste into checkpoints.md
"""

from __future__ import annotations

import json
from typing import Any

from hubmodels.presets_catalog import (
    NOT_MEASURED,
    installed_presets,
    preset_config,
    preset_folder,
)

METHODS = {
    "standard": "standard (no AT)",
    "pgd_at": "PGD-AT",
    "trades": "TRADES (β = {beta:g})",
    "weat_adv": "WEAT_adv (β = {beta:g})",
    "weat_nat": "WEAT_nat (β = {beta:g})",
}


def percent(metrics: dict, key: str) -> str:
    return NOT_MEASURED if key not in metrics else f"{100 * metrics[key]:.2f} %"


def method_label(training: dict) -> str:
    base = training["method"].removesuffix("+der")  # the card names DER runs "BASE+der"
    label = METHODS.get(base, base).format(**training)
    if training.get("der_lambda"):
        label += f" + DER (λ = {training['der_lambda']:g}, {training.get('der_form', 'squared')})"
    return label


def row(name: str, config: dict[str, Any]) -> str:
    metrics, threat = config["metrics"], config["threat_model"]
    size_mib = (preset_folder(name) / "model.safetensors").stat().st_size / 2**20
    cells = [
        f"`{name}`",
        "small CNN" if config["architecture"] == "small_cnn" else config["architecture"],
        "Fashion-MNIST" if config["dataset"] == "fashion-mnist" else config["dataset"],
        f"{'L∞' if threat['norm'] == 'linf' else 'L2'} ε = {threat['epsilon']:g}",
        method_label(config["training"]),
        percent(metrics, "clean_acc"),
        percent(metrics, "pgd20_acc"),
        percent(metrics, "autoattack_acc"),
        f"{size_mib:.1f} MiB",
    ]
    return "| " + " | ".join(cells) + " |"


def facts(name: str, config: dict[str, Any]) -> str:
    metrics = config["metrics"]
    history = [json.loads(line) for line in (preset_folder(name) / "metrics.jsonl").open()]
    measured = [k for k in ("clean", "pgd20", "autoattack") if f"{k}_seconds" in metrics]
    lines = [
        f"### {name}",
        "",
        f"- command: `{config['training']['command']}`",
        f"- training wall time: {round(sum(h['seconds'] for h in history)):,} s for"
        f" {len(history)} epochs; the selected epoch was saved after"
        f" {metrics['train_seconds']:,} s",
        f"- selected epoch {metrics['epoch']}: validation clean"
        f" {100 * metrics['val_clean_acc']:.1f} %,"
        f" PGD-{metrics['val_pgd_steps']} {100 * metrics['val_pgd_acc']:.1f} %,"
        f" dE(x) {metrics['delta_energy']:+.3f}",
        "- dE(x) per epoch: " + ", ".join(f"{h['delta_energy']:+.3f}" for h in history),
        "- evaluation wall time: "
        + ", ".join(
            f"{k} {metrics[f'{k}_seconds']:,} s on {metrics.get(f'{k}_device', 'cpu')}"
            for k in measured
        ),
    ]
    # A preset whose AutoAttack covers fewer images than its clean number says so.
    if metrics.get("autoattack_images", metrics["clean_images"]) < metrics["clean_images"]:
        lines[-1] += f" (AutoAttack on the first {metrics['autoattack_images']:,} test images)"
    return "\n".join(lines)


def main() -> None:
    configs = {name: preset_config(name) for name in installed_presets()}
    print("\n".join(row(name, config) for name, config in configs.items()))
    for name, config in configs.items():
        print()
        print(facts(name, config))


if __name__ == "__main__":
    main()
