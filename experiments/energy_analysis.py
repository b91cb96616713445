"""Energy analysis (WEAT sec. 3, docs/methods.md 2.1): where do attacks move E(x) and E(x, y)?

WEAT reports, on CIFAR-10 with a standard model, that untargeted attacks (PGD, APGD-CE) *lower*
the marginal energy E(x) while targeted attacks *raise* it, and that E(x, y) rises for all of
them. This script measures the same on our presets: for the first N test images it computes
E(x) and E(x, y) (y the true label) on natural images, on untargeted CE-PGD adversarials and on
targeted PGD adversarials towards a random wrong class, then draws one histogram per model and
energy and prints a Markdown table of means.

    python experiments/energy_analysis.py --models fmnist-smallcnn-standard fmnist-smallcnn-weat \
        --num-images 1000 --out docs/figures/energy_analysis.png
"""

from __future__ import annotations

import argparse
import time

import torch

from hubmodels import RobustClassifier, attacks
from hubmodels.energy import joint_energy, marginal_energy
from hubmodels.training.data import load_dataset

KINDS = ("natural", "untargeted PGD", "targeted PGD")


def energies_under_attack(
    model: RobustClassifier, x: torch.Tensor, y: torch.Tensor, *, eps: float, steps: int, seed: int
) -> dict[str, dict[str, torch.Tensor]]:
    """{kind: {"E(x)": (N,), "E(x,y)": (N,)}} for natural, untargeted and targeted images."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # PGD's random start draws from the global generator
    # A random wrong class per image: y + U{1..K-1} mod K.
    k = model.config["num_classes"]
    target = (y + torch.randint(1, k, y.shape, generator=generator)) % k
    alpha = eps / 4
    images = {
        "natural": x,
        "untargeted PGD": attacks.pgd(model, x, y, eps=eps, alpha=alpha, steps=steps),
        "targeted PGD": attacks.pgd(
            model, x, y, eps=eps, alpha=alpha, steps=steps, loss="targeted", target=target
        ),
    }
    out = {}
    with torch.no_grad():
        for kind, batch in images.items():
            logits = model(batch)
            out[kind] = {"E(x)": marginal_energy(logits), "E(x,y)": joint_energy(logits, y)}
    return out


def plot(results: dict[str, dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 2, figsize=(10, 3.2 * len(results)), squeeze=False)
    colours = {"natural": "tab:green", "untargeted PGD": "tab:red", "targeted PGD": "tab:blue"}
    for row, (name, per_kind) in enumerate(results.items()):
        for col, energy in enumerate(("E(x)", "E(x,y)")):
            ax = axes[row][col]
            for kind in KINDS:
                values = per_kind[kind][energy].numpy()
                ax.hist(values, bins=60, alpha=0.45, color=colours[kind], label=kind)
            ax.set_title(f"{name}: {energy}", fontsize=9)
            ax.set_xlabel("energy (lower = more likely under the model)")
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True, help="preset names or folders")
    parser.add_argument("--num-images", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--epsilon", type=float, help="default: each model's threat model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/figures/energy_analysis.png")
    args = parser.parse_args()

    results = {}
    print("| model | images | E(x) mean | E(x,y) mean |")
    print("|---|---|---|---|")
    for name in args.models:
        model = RobustClassifier.from_pretrained(name)
        test = load_dataset(model.config["dataset"]).test
        n = min(args.num_images, len(test))
        x = torch.stack([test[i][0] for i in range(n)])
        y = torch.tensor([test[i][1] for i in range(n)])
        eps = args.epsilon or model.config["threat_model"]["epsilon"]
        started = time.time()
        results[name] = energies_under_attack(
            model, x, y, eps=eps, steps=args.steps, seed=args.seed
        )
        for kind in KINDS:
            e, ey = results[name][kind]["E(x)"], results[name][kind]["E(x,y)"]
            print(f"| {name} | {kind} | {e.mean():.3f} | {ey.mean():.3f} |")
        print(
            f"<!-- {name}: {n} test images, eps {eps}, {args.steps}-step PGD, "
            f"{time.time() - started:.0f} s -->"
        )
    plot(results, args.out)
    print(f"histograms: {args.out}")


if __name__ == "__main__":
    main()
