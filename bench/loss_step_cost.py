"""Per-step cost of each training method, as ratios measured side by side in one run.

Targets: every DER variant costs at most 1.10x its base method (at its own adversarial it
reuses the base attack; at a uniform or 2-step PGD point it adds a forward, and two attack
steps), and WEAT_adv at most 1.05x TRADES. Methods are timed in interleaved rounds (A B C D,
A B C D, ...) so drifts in machine load hit all of them alike; the ratio of medians is printed.

    python bench/loss_step_cost.py                      # small CNN, Fashion-MNIST shapes, CPU
    python bench/loss_step_cost.py --device cuda --architecture resnet18 --image-size 32 \
        --channels 3 --batch-size 128
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from hubmodels.classifiers import RobustClassifier
from hubmodels.training.losses import AttackSettings, training_loss

DER = dict(der_lambda=1.0)  # the trainer's defaults: the joint form at the method's adversarial
METHODS = {  # label -> (method, DER settings of training_loss)
    "pgd_at": ("pgd_at", {}),
    "pgd_at+der": ("pgd_at", DER),
    "pgd_at+der[squared]": ("pgd_at", dict(DER, der_form="squared")),
    "trades": ("trades", {}),
    "trades+der": ("trades", DER),
    "trades+der[uniform]": ("trades", dict(DER, der_at="uniform")),
    "weat_adv": ("weat_adv", {}),
    "weat_adv+der": ("weat_adv", DER),
    "fgsm": ("fgsm", {}),
    "fgsm+der": ("fgsm", DER),
    "fgsm+der[relative]": ("fgsm", dict(DER, der_form="relative")),
    "fgsm+der[uniform]": ("fgsm", dict(DER, der_at="uniform")),
    "fgsm+der[pgd2]": ("fgsm", dict(DER, der_at="pgd2")),
}
RATIOS = [  # (method, baseline, target)
    ("pgd_at+der", "pgd_at", 1.10),
    ("pgd_at+der[squared]", "pgd_at", 1.10),
    ("trades+der", "trades", 1.10),
    ("trades+der[uniform]", "trades", 1.10),
    ("weat_adv+der", "weat_adv", 1.10),
    ("fgsm+der", "fgsm", 1.10),
    ("fgsm+der[relative]", "fgsm", 1.10),
    ("fgsm+der[uniform]", "fgsm", 1.10),
    ("fgsm+der[pgd2]", "fgsm", 1.10),
    ("weat_adv", "trades", 1.05),
    ("trades", "pgd_at", None),
    ("weat_adv", "pgd_at", None),
]


def one_step(model, optimiser, method, der, x, y, attack, device) -> float:
    start = time.perf_counter()
    out = training_loss(method, model, x, y, attack, **der)
    optimiser.zero_grad(set_to_none=True)
    out.loss.backward()
    optimiser.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architecture", default="small_cnn")
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--attack-steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    device = torch.device(args.device)
    torch.manual_seed(0)
    shape = (args.batch_size, args.channels, args.image_size, args.image_size)
    x, y = torch.rand(shape, device=device), torch.randint(0, 10, (args.batch_size,), device=device)
    attack = AttackSettings(norm="linf", eps=0.1, alpha=0.025, steps=args.attack_steps)
    # One model and optimiser per method, identical at the start, so no method inherits
    # another's weights or optimiser state.
    runs = {}
    for label in METHODS:
        torch.manual_seed(0)
        model = (
            RobustClassifier(
                architecture=args.architecture,
                in_channels=args.channels,
                image_size=args.image_size,
            )
            .to(device)
            .train()
        )
        runs[label] = (model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))

    times: dict[str, list[float]] = {label: [] for label in METHODS}
    for round_ in range(args.warmup + args.rounds):
        for label, (method, der) in METHODS.items():
            model, optimiser = runs[label]
            seconds = one_step(model, optimiser, method, der, x, y, attack, device)
            if round_ >= args.warmup:
                times[label].append(seconds)

    print(
        f"{args.architecture} {shape} on {device}, {args.attack_steps}-step attacks, "
        f"median of {args.rounds} interleaved rounds, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"{'method':<20} {'ms/step':>9}")
    medians = {label: statistics.median(t) for label, t in times.items()}
    for label, m in medians.items():
        print(f"{label:<20} {m * 1000:9.1f}")
    print(f"\n{'ratio':<30} {'value':>6} {'target':>7}")
    for method, base, target in RATIOS:
        ratio = medians[method] / medians[base]
        verdict = "" if target is None else ("  ok" if ratio <= target else "  MISSED")
        target_text = "" if target is None else f"<={target:.2f}"
        print(f"{method + ' / ' + base:<30} {ratio:6.3f} {target_text:>7}{verdict}")


if __name__ == "__main__":
    main()
