"""The README.md of a saved ``CLIPInverter``: hub metadata, what it decodes with, how to load it."""

from __future__ import annotations

from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from hubmodels.inversion.bank import AnchorBank


def inverter_model_card(config: dict[str, Any], bank: AnchorBank | None) -> ModelCard:
    """The card of an inverter with ``config`` (its constructor's arguments) and ``bank``."""
    data = ModelCardData(
        library_name="hubmodels",
        license="apache-2.0",
        tags=["hubmodels", "clip-inversion", "text-to-image"],
    )
    if bank is not None:
        bank_line = f"an anchor bank of {len(bank)} AWP anchors (encoder `{bank.encoder}`)"
    elif config.get("bank") == "builtin":
        bank_line = (
            "the anchor bank shipped in the hubmodels package (its keys are computed with this "
            "encoder on first use)"
        )
    else:
        bank_line = "no anchor bank (plain CLIP⁻¹: random INR start, raw text target)"
    body = (
        "# CLIP⁻¹ inverter\n\n"
        f"A frozen `{config['clip']}` ({config['pretrained'] or 'random weights'}) used as a "
        f"decoder by implicit inversion (FINER INR with a layer-wise learning-rate sweep), with "
        f"{bank_line}. The encoder's weights are referenced, not copied.\n\n"
        "```python\nfrom hubmodels import CLIPInverter\n"
        'inv = CLIPInverter.from_pretrained("<this repo>")\n'
        'image = inv.text_to_image("a lighthouse at dusk", seed=0).images[0]\n```\n'
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")
