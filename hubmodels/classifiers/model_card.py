"""The model card of a RobustClassifier checkpoint, rendered from its config alone.

A card states what a reader needs to trust or reuse the weights: architecture, data, threat
model, training recipe (with the command that reproduces it) and every measured number with the
setup that measured it. It is regenerated on every save, so it never disagrees with config.json.
"""

from __future__ import annotations

from typing import Any

from huggingface_hub import ModelCard, ModelCardData

PAPERS = {
    "weat": "Mirza et al., *Shedding More Light on Robust Classifiers under the Lens of "
    "Energy-based Models*, ECCV 2024 (arXiv 2407.06315)",
    "der": "Mirza et al., *Understanding Adversarial Training with Energy-based Models*, "
    "arXiv 2505.22486",
    "trades": "Zhang et al., *Theoretically Principled Trade-off between Robustness and "
    "Accuracy*, ICML 2019",
    "pgd": "Madry et al., *Towards Deep Learning Models Resistant to Adversarial Attacks*, "
    "ICLR 2018",
}


def _method_papers(method: str) -> list[str]:
    method = method.lower()
    keys = [k for k in ("weat", "trades", "der") if k in method]
    if "pgd" in method or "fgsm" in method:
        keys.append("pgd")
    return [PAPERS[k] for k in keys]


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        if abs(value) < 1:
            return f"{value:.4f}"
        # Whole numbers past four digits (hours of attack seconds) read better than 2.208e+04.
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return f"`{value}`" if isinstance(value, str) and " " not in value else str(value)


def _table(rows: dict[str, Any]) -> str:
    lines = ["| setting | value |", "|---|---|"]
    lines += [f"| {k} | {_format_value(v)} |" for k, v in rows.items() if k != "command"]
    return "\n".join(lines)


SOURCE_PLACEHOLDER = "<this repo or folder>"  # where the card lives; a catalog fills in the name


def _summary(method: str) -> str:
    """The card's first sentence: a standard model must not be called robust."""
    reading = "read as an energy-based model: E(x) = -logsumexp f(x) and E(x, y) = -f(x)[y]."
    if method == "standard":
        return (
            "A standard classifier (no adversarial training: the non-robust reference, which "
            f"attacks break and which does not generate), {reading}"
        )
    return f"A robust classifier {reading}"


def render_model_card(config: dict[str, Any]) -> ModelCard:
    """Build the README.md (YAML metadata + body) for a checkpoint config."""
    training = config.get("training") or {}
    threat = config.get("threat_model") or {}
    metrics = config.get("metrics") or {}
    method = str(training.get("method", "unspecified"))
    dataset = config.get("dataset") or "unspecified"
    tags = ["hubmodels", "robust-classifier", "energy-based-model", "image-classification"]
    tags += [t for t in (method.lower(), str(threat.get("norm", "")).lower()) if t]
    data = ModelCardData(
        library_name="hubmodels",
        license="apache-2.0",
        tags=sorted(set(tags)),
        datasets=[dataset] if config.get("dataset") else None,
        pipeline_tag="image-classification",
    )
    eps = threat.get("epsilon")
    threat_text = (
        f"{threat.get('norm', '?')} with epsilon {eps:.4g} on the [0, 1] pixel scale"
        f" ({eps * 255:.2f}/255)"
        if isinstance(eps, (int, float))
        else "none stated (not adversarially trained)"
    )
    body = [
        f"# {config['architecture']} on {dataset}, trained with {method}",
        "",
        _summary(method) + " Load it with [hubmodels](https://github.com/hubmodels/hubmodels):",
        "",
        "```python",
        "from hubmodels import RobustClassifier",
        f'clf = RobustClassifier.from_pretrained("{SOURCE_PLACEHOLDER}")',
        "logits = clf(x)          # x in [0, 1], shape (N, "
        f"{config['in_channels']}, {config['image_size']}, {config['image_size']})",
        "energy = clf.energy(x)   # marginal energy; clf.energy(x, y) for the joint one",
        "```",
        "",
        "## Model",
        f"- architecture: `{config['architecture']}`, {config['num_classes']} classes, "
        f"input {config['in_channels']}x{config['image_size']}x{config['image_size']} in [0, 1]",
        f"- normalisation inside forward: mean {config['mean']}, std {config['std']}",
        f"- classes: {', '.join(config['class_names'])}",
        f"- threat model: {threat_text}",
        "",
        "## Training",
    ]
    if training:
        body += [_table(training), ""]
        if training.get("command"):
            body += ["Reproduce with:", "", "```bash", str(training["command"]), "```", ""]
    else:
        body += ["No training recipe recorded.", ""]
    body += ["## Evaluation"]
    if metrics:
        body += [_table(metrics), ""]
    else:
        body += ["No metrics measured yet: run `python -m hubmodels eval` on this checkpoint.", ""]
    papers = _method_papers(method)
    if papers:
        body += ["## References", *[f"- {p}" for p in papers], ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body))
