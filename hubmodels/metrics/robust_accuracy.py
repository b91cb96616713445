"""Clean, PGD and AutoAttack accuracy, and the delta-energy diagnostics, over a data loader.

The evaluation protocol of WEAT (docs/methods.md 2.4): model selection by PGD-20 (CE, uniform
start, alpha = eps/4) on a validation split; final numbers with PGD-20/50 with restarts and
AutoAttack "standard" (APGD-CE, APGD-T, FAB-T, Square; torchattacks' implementation).
Every function puts the model in eval mode and restores its previous mode.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import torch
from torch import nn

from hubmodels import attacks
from hubmodels.energy import delta_energy, marginal_energy
from hubmodels.metrics.batch_ledger import BatchLedger

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]
AttackFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def pgd_attack(
    eps: float, steps: int, *, norm: str = "linf", alpha: float | None = None, restarts: int = 1
) -> AttackFn:
    """The evaluation attack: CE-PGD with a uniform random start (alpha defaults to eps/4)."""
    step = eps / 4 if alpha is None else alpha

    def attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return attacks.pgd(
            model, x, y, eps=eps, alpha=step, steps=steps, norm=norm, loss="ce", restarts=restarts
        )

    return attack


def autoattack(eps: float, *, norm: str = "linf", num_classes: int = 10, seed: int = 0) -> AttackFn:
    """AutoAttack "standard" through torchattacks (Croce & Hein 2020)."""
    import torchattacks  # imported here: it is only needed for final evaluations

    def attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        aa = torchattacks.AutoAttack(
            model,
            norm={"linf": "Linf", "l2": "L2"}[norm],
            eps=eps,
            version="standard",
            n_classes=num_classes,
            seed=seed,
        )
        return aa(x, y).detach()

    return attack


def accuracy(
    model: nn.Module,
    batches: Batches,
    attack: AttackFn | None = None,
    *,
    device: torch.device | str | None = None,
    limit: int | None = None,
    ledger: BatchLedger | None = None,
) -> float:
    """Top-1 accuracy on (attacked, if ``attack`` is given) images; ``limit`` caps the count.

    With a ``ledger``, batches it holds are not attacked again and new ones are added to it.
    """
    device = device or next(model.parameters()).device
    correct = seen = 0
    with attacks.eval_mode(model):
        for index, (x, y) in enumerate(batches):
            if limit is not None and seen >= limit:
                break
            if limit is not None:
                x, y = x[: limit - seen], y[: limit - seen]
            recorded = ledger.get(index, len(y)) if ledger is not None else None
            if recorded is None:
                started = time.time()
                hits = _correct(model, x.to(device), y.to(device), attack)
                if ledger is not None:
                    where = device_name(torch.device(device))
                    ledger.record(index, hits, len(y), round(time.time() - started, 1), where)
            correct += hits if recorded is None else recorded["correct"]
            seen += len(y)
    if seen == 0:
        raise ValueError("accuracy over an empty data set")
    return correct / seen


def _correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: AttackFn | None) -> int:
    if attack is not None:
        x = attack(model, x, y)
    with torch.no_grad():
        return int((model(x).argmax(1) == y).sum().item())


def energy_diagnostics(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: AttackFn, batch_size: int = 256
) -> dict[str, float]:
    """Mean E(x), E(x*), dE(x) and dE(x, y) on fixed images (docs/methods.md 3.4 diagnostics),
    and the logit scale: the mean over images of the natural logits' std over classes (a model
    can meet a squared DER penalty by shrinking it).

    x* comes from ``attack`` (the method's own training attack), evaluated in eval mode so the
    numbers do not depend on batch statistics.
    """
    sums = {
        "energy_nat": 0.0,
        "energy_adv": 0.0,
        "delta_energy": 0.0,
        "delta_energy_joint": 0.0,
        "logit_scale": 0.0,
    }
    device = next(model.parameters()).device
    with attacks.eval_mode(model):
        for start in range(0, len(x), batch_size):
            xb, yb = (
                x[start : start + batch_size].to(device),
                y[start : start + batch_size].to(device),
            )
            x_adv = attack(model, xb, yb)
            with torch.no_grad():
                nat, adv = model(xb), model(x_adv)
            sums["energy_nat"] += marginal_energy(nat).sum().item()
            sums["energy_adv"] += marginal_energy(adv).sum().item()
            sums["delta_energy"] += delta_energy(nat, adv).sum().item()
            sums["delta_energy_joint"] += delta_energy(nat, adv, yb).sum().item()
            sums["logit_scale"] += nat.std(dim=1).sum().item()
    return {k: v / len(x) for k, v in sums.items()}


def device_name(device: torch.device) -> str:
    """'NVIDIA H100 80GB HBM3' or 'cpu (2 threads)': what a wall time was measured on."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"{device.type} ({threads} thread{'' if threads == 1 else 's'})"


def evaluate_robustness(
    model: nn.Module,
    batches: Batches,
    *,
    eps: float,
    norm: str = "linf",
    num_images: int,
    pgd_steps: tuple[int, ...] = (20, 50),
    restarts: int = 1,
    autoattack_eval: bool = True,
    autoattack_images: int | None = None,
    num_classes: int = 10,
    autoattack_ledger: BatchLedger | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, float]:
    """The final-evaluation protocol on the first ``num_images`` of ``batches``.

    AutoAttack, far slower than PGD on a CPU, may run on the first ``autoattack_images`` only,
    and with ``autoattack_ledger`` resumes from the batches an earlier run finished (its seconds
    and device are then those of every run together).
    Returns accuracies keyed ``clean_acc``, ``pgd{K}_acc`` and ``autoattack_acc``, the image
    count, seconds and device of each, so a model card can say what was measured and at what
    cost (a number measured later on another machine is merged in beside the others).
    """
    batches = list(batches)  # iterated once per attack
    runs: dict[str, AttackFn | None] = {"clean": None}
    runs.update({f"pgd{k}": pgd_attack(eps, k, norm=norm, restarts=restarts) for k in pgd_steps})
    if autoattack_eval:
        runs["autoattack"] = autoattack(eps, norm=norm, num_classes=num_classes)
    results: dict[str, float | str] = {}
    device = device_name(next(model.parameters()).device)
    for name, attack in runs.items():
        started = time.time()
        count = num_images
        if name == "autoattack" and autoattack_images is not None:
            count = min(autoattack_images, num_images)
        ledger = autoattack_ledger if name == "autoattack" else None
        if ledger is not None and ledger.batches:
            progress(f"{name}: resuming from {ledger.path}")
        acc = accuracy(model, batches, attack, limit=count, ledger=ledger)
        results[f"{name}_acc"] = round(acc, 4)
        results[f"{name}_images"] = count
        results[f"{name}_seconds"] = round(time.time() - started, 1)
        results[f"{name}_device"] = device
        if ledger is not None:
            results[f"{name}_seconds"], results[f"{name}_device"] = ledger.spent()
        progress(f"{name}: {results[f'{name}_acc']:.4f} ({results[f'{name}_seconds']} s)")
    return results
