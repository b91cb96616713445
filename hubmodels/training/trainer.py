"""The adversarial trainer: one loop for every method, run by accelerate.

``python -m hubmodels train ...`` runs it on one device or the CPU; ``accelerate launch -m
hubmodels train ...`` on any number of GPUs or nodes. accelerate does device placement, mixed
precision, gradient accumulation and data parallelism; this file does the method (losses.py),
the schedule, the per-epoch diagnostics of DER (docs/methods.md 3.4), model selection on the
validation split, and saving:

    output_dir/
      run_config.json   the TrainConfig of the run
      metrics.jsonl     one line per epoch: accuracies, energies, dE, lr, time, alarm
      training.png      dE(x) next to PGD validation error, as in the DER paper's figure
      state/            accelerate.save_state every epoch; --resume continues from it
      best/             save_pretrained of the best epoch by validation PGD accuracy
      last/             save_pretrained of the final epoch (best vs last measures RO)
                        (both with a sampling prior fitted on the run's training images,
                        unless --no-fit-prior)

Resuming is exact on the CPU: data order is seeded per epoch, and the RNG states (augmentation,
attack starts) are part of the saved state.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from hubmodels.classifiers import RobustClassifier
from hubmodels.hub import push_folder
from hubmodels.metrics.robust_accuracy import accuracy, energy_diagnostics, pgd_attack
from hubmodels.training.alarm import check_alarm
from hubmodels.training.config import TrainConfig
from hubmodels.training.data import load_dataset
from hubmodels.training.losses import AttackSettings, training_attack, training_loss
from hubmodels.training.plots import plot_history


@dataclass
class RunState:
    """What the loop needs besides model/optimiser/scheduler to resume: registered with
    accelerate so ``save_state`` / ``load_state`` carry it."""

    epoch: int = 0  # epochs completed
    best_score: float = -1.0
    best_epoch: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "history": self.history,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = state["epoch"]
        self.best_score = state["best_score"]
        self.best_epoch = state["best_epoch"]
        self.history = list(state["history"])


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning-rate schedule, stepped once per optimiser step."""
    total = config.epochs * steps_per_epoch
    if config.schedule == "onecycle":  # WEAT: max 0.1, 25 % warm-up, cosine (docs/methods.md 2.5)
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.lr, total_steps=total, pct_start=0.25
        )
    if config.schedule == "cyclic":  # fast AT (Wong et al. 2020): linear up to the peak and down
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=config.lr,
            total_steps=total,
            pct_start=0.5,
            anneal_strategy="linear",
            div_factor=1e4,
            final_div_factor=1.0,
            cycle_momentum=False,
        )
    if config.schedule == "piecewise":  # Rice et al. 2020: x0.1 at 50 % and 75 % of training
        milestones = [int(total * 0.5), int(total * 0.75)]
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def build_model(config: TrainConfig, info) -> RobustClassifier:
    return RobustClassifier(
        architecture=config.architecture,
        num_classes=info.num_classes,
        in_channels=info.in_channels,
        image_size=info.image_size,
        class_names=list(info.class_names),
        mean=list(info.mean) if config.normalize else None,
        std=list(info.std) if config.normalize else None,
        dataset=info.name,
        threat_model={"norm": config.norm, "epsilon": config.epsilon},
        training=recipe(config),
    )


def recipe(config: TrainConfig) -> dict[str, Any]:
    """The part of the config a model card shows as the training recipe."""
    keys = [
        "method",
        "beta",
        "weat_reduction",
        "der_lambda",
        "der_form",
        "der_at",
        "epochs",
        "batch_size",
        "lr",
        "schedule",
        "momentum",
        "weight_decay",
        "attack_steps",
        "attack_bn",
        "alpha",
        "seed",
        "train_subset",
        "label_noise",
        "label_smoothing",
        "augment",
        "ema_decay",
        "command",
    ]
    out = {k: getattr(config, k) for k in keys if getattr(config, k) is not None}
    out["method"] = config.method_name
    # Keep only the settings the method actually uses, so a card never lists dead knobs.
    unused = set()
    if config.der_lambda == 0:
        unused |= {"der_lambda", "der_form", "der_at"}
    if config.label_noise == 0:
        unused.add("label_noise")
    if config.label_smoothing == 0:
        unused.add("label_smoothing")
    if config.method not in ("trades", "weat_adv", "weat_nat"):
        unused.add("beta")
    if config.method not in ("weat_adv", "weat_nat"):
        unused.add("weat_reduction")
    if config.method not in ("fgsm", "rs_fgsm", "n_fgsm"):
        unused.add("attack_bn")
    if config.method == "standard":
        unused |= {"attack_steps", "alpha"}
    elif config.method in ("fgsm", "rs_fgsm", "n_fgsm"):
        unused |= {"attack_steps", "alpha"}  # single-step attacks set their own step from eps
    return {k: v for k, v in out.items() if k not in unused}


def _loader(dataset, config: TrainConfig, shuffle: bool, batch_size: int) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=config.num_workers,
        drop_last=False,
    )


# Settings that may change between a run and its resumption; any other change is refused.
RESUMABLE_CHANGES = {"resume", "command", "push_to_hub", "num_workers", "eval_batch_size"}
# Defaults that have changed, with the value a run saved before the setting existed trained with.
EARLIER_DEFAULTS = {"der_form": "squared"}


def _check_same_run(saved_config: Path, config: TrainConfig) -> None:
    """Refuse to resume a run with different settings: its state would not match them."""
    if not saved_config.is_file():
        return
    saved = json.loads(saved_config.read_text())
    # A setting added after the run was saved is missing there; the run had the default of the
    # time (today's, unless it has changed since).
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)} | EARLIER_DEFAULTS
    ran_with = {k: saved.get(k, defaults.get(k)) for k in config.to_dict()}
    changed = sorted(
        k for k, v in config.to_dict().items() if k not in RESUMABLE_CHANGES and ran_with[k] != v
    )
    if changed:
        details = ", ".join(f"{k}: {ran_with[k]!r} -> {getattr(config, k)!r}" for k in changed)
        raise ValueError(
            f"cannot resume {saved_config.parent} with different settings ({details}); "
            "use the original flags or a new --output-dir"
        )


def _fixed_subset(splits, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n un-augmented training images, the same every epoch (for the dE diagnostics).

    Their labels are the ones training sees (noisy ones under ``label_noise``): the diagnostics
    attack them the way the training attack does.
    """
    train = splits.train
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]
    images = torch.stack([train.base[int(train.indices[i])][0] for i in order])
    return images, train.labels[order]


def train(
    config: TrainConfig, on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None
) -> Path:
    """Run (or resume) training; return the folder of the best checkpoint.

    ``on_epoch_end(epoch, record)`` is called after each epoch's state is saved (tests use it to
    interrupt a run).
    """
    accelerator = Accelerator(
        gradient_accumulation_steps=config.grad_accum,
        mixed_precision=config.mixed_precision,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=config.seed),
    )
    set_seed(config.seed)
    out = Path(config.output_dir)
    main = accelerator.is_main_process
    if config.resume:
        _check_same_run(out / "run_config.json", config)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "run_config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")

    splits = load_dataset(
        config.dataset,
        root=config.data_root,
        val_size=config.val_size,
        seed=config.seed,
        augment=config.augment,
        download=config.download,
        train_subset=config.train_subset,
        label_noise=config.label_noise,
    )
    model = build_model(config, splits.info)
    if config.channels_last:  # saved weights are made contiguous again by save_pretrained
        model = model.to(memory_format=torch.channels_last)
    fixed_x, fixed_y = _fixed_subset(
        splits, min(config.energy_subset, len(splits.train)), config.seed
    )
    train_loader = _loader(splits.train, config, True, config.batch_size)
    val_loader = _loader(splits.val, config, False, config.eval_batch_size)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    # Counted on the unsharded loader: accelerate's scheduler wrapper steps the schedule once per
    # process for each optimiser step, so the schedule spans the whole data whatever the sharding.
    steps_per_epoch = math.ceil(len(train_loader) / config.grad_accum)
    scheduler = make_scheduler(optimizer, config, steps_per_epoch)
    model, optimizer, train_loader, val_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, val_loader, scheduler
    )
    raw_model: RobustClassifier = accelerator.unwrap_model(model)
    ema = None
    if config.ema_decay is not None:
        from diffusers.training_utils import EMAModel

        ema = EMAModel(raw_model.parameters(), decay=config.ema_decay)
        ema.to(accelerator.device)
        accelerator.register_for_checkpointing(ema)
    run = RunState()
    accelerator.register_for_checkpointing(run)
    state_dir = out / "state"
    if config.resume and (state_dir / "custom_checkpoint_0.pkl").exists():
        accelerator.load_state(str(state_dir))
        accelerator.print(f"resumed from {state_dir} after epoch {run.epoch}")

    attack = AttackSettings(
        norm=config.norm,
        eps=config.epsilon,
        alpha=config.alpha,
        steps=config.attack_steps,
        bn=config.attack_bn,
    )
    # The dE diagnostics attack in eval mode whatever the training attack does: measuring must
    # not move BatchNorm's running statistics.
    diagnostic_attack = training_attack(config.method, dataclasses.replace(attack, bn="eval"))
    val_attack = pgd_attack(config.epsilon, config.val_attack_steps, norm=config.norm)
    for epoch in range(run.epoch, config.epochs):
        started = time.time()
        train_loader.set_epoch(epoch)
        train_loss, train_acc = _train_one_epoch(
            accelerator,
            model,
            raw_model,
            optimizer,
            scheduler,
            ema,
            train_loader,
            attack,
            config,
            desc=f"epoch {epoch + 1}/{config.epochs}",
        )
        record = _evaluate_epoch(
            accelerator,
            raw_model,
            ema,
            val_loader,
            val_attack,
            (fixed_x, fixed_y),
            diagnostic_attack,
            config,
        )
        record.update(
            epoch=epoch + 1,
            lr=scheduler.get_last_lr()[0],
            train_loss=train_loss,
            train_acc=train_acc,
            seconds=round(time.time() - started, 2),
            val_pgd_steps=config.val_attack_steps,
        )
        run.history.append(record)
        record["alarm"] = check_alarm(run.history)
        if record["alarm"]:
            accelerator.print(f"\n!!! CO/RO ALARM at epoch {epoch + 1}: {record['alarm']}\n")
        run.epoch = epoch + 1
        # Robust models are selected by robust accuracy; the standard reference by clean accuracy.
        score = record["val_clean_acc" if config.method == "standard" else "val_pgd_acc"]
        if score > run.best_score:
            run.best_score, run.best_epoch = score, epoch + 1
            if main:
                _save_checkpoint(raw_model, ema, out / "best", run.history, splits.info.name)
        accelerator.print(
            f"epoch {epoch + 1}: val clean {record['val_clean_acc']:.4f} "
            f"PGD-{config.val_attack_steps} {record['val_pgd_acc']:.4f} "
            f"dE(x) {record['delta_energy']:+.4f} dE(x,y) {record['delta_energy_joint']:+.4f}"
        )
        if main:
            # Rewritten whole from the saved history, so a resumed run never duplicates lines.
            lines = "".join(json.dumps(h) + "\n" for h in run.history)
            (out / "metrics.jsonl").write_text(lines)
            plot_history(run.history, out / "training.png", title=config.method_name)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(state_dir))
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, record)

    if main:
        _save_checkpoint(raw_model, ema, out / "last", run.history, splits.info.name)
        if config.fit_prior:
            _fit_sampling_priors(splits.train, [out / "best", out / "last"])
        if config.push_to_hub:
            url = push_folder(out / "best", config.push_to_hub)
            accelerator.print(f"pushed {out / 'best'} to {url}")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return out / "best"


def _train_one_epoch(
    accelerator, model, raw_model, optimizer, scheduler, ema, loader, attack, config, desc
) -> tuple[float, float]:
    """One pass over the training data; returns the mean loss and the (adversarial) accuracy."""
    model.train()
    loss_sum = correct = seen = 0.0
    bar = tqdm(loader, desc=desc, disable=not accelerator.is_main_process)
    for x, y in bar:
        with accelerator.accumulate(model):
            result = training_loss(
                config.method,
                model,
                x,
                y,
                attack,
                beta=config.beta,
                weat_reduction=config.weat_reduction,
                der_lambda=config.der_lambda,
                der_form=config.der_form,
                der_weighted=config.der_weighted,
                der_at=config.der_at,
                label_smoothing=config.label_smoothing,
                attack_model=raw_model,  # attacks need no gradient sync across processes
            )
            if not torch.isfinite(result.loss):
                raise FloatingPointError(
                    f"loss became {result.loss.item()} in {desc}; lower --lr, or continue "
                    f"from the last saved epoch with --resume"
                )
            accelerator.backward(result.loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        if ema is not None and accelerator.sync_gradients:
            ema.step(raw_model.parameters())
        logits = result.logits_adv if result.logits_adv is not None else result.logits_nat
        loss_sum += result.loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
    return loss_sum / seen, correct / seen


@contextmanager
def _averaged_weights(model, ema) -> Iterator[None]:
    """Swap the EMA weights in (when kept) for evaluation or saving, and back afterwards."""
    if ema is None:
        yield
        return
    ema.store(model.parameters())
    ema.copy_to(model.parameters())
    try:
        yield
    finally:
        ema.restore(model.parameters())


def _evaluate_epoch(accelerator, model, ema, val_loader, val_attack, fixed, train_attack, config):
    """Validation accuracies (clean, PGD) and the dE diagnostics, with EMA weights if kept."""
    with _averaged_weights(model, ema):
        clean = accuracy(model, val_loader)
        robust = accuracy(model, val_loader, val_attack)
        # Each process saw a shard of the validation data; average the per-process results.
        both = accelerator.reduce(
            torch.tensor([clean, robust], device=accelerator.device), reduction="mean"
        )
        energies = energy_diagnostics(
            model, *fixed, attack=train_attack, batch_size=config.eval_batch_size
        )
    return {"val_clean_acc": both[0].item(), "val_pgd_acc": both[1].item(), **energies}


def _fit_sampling_priors(train, folders: list[Path]) -> None:
    """Fit the sampling prior (docs/sampling.md) into each saved checkpoint, on exactly the
    images the run trained on, un-augmented, so that ``sample`` works on a fresh run."""
    images = torch.stack([train.base[int(i)][0] for i in train.indices])
    for folder in folders:
        model = RobustClassifier.from_pretrained(folder)
        model.fit_prior(images, train.labels)
        model.save_pretrained(folder)


def _save_checkpoint(model, ema, folder: Path, history: list[dict], dataset: str) -> None:
    """save_pretrained with the newest epoch's validation numbers and the training time."""
    record = history[-1]
    model.update_config(
        metrics={
            "split": f"{dataset} validation (held out from training)",
            "epoch": record["epoch"],
            "val_clean_acc": round(record["val_clean_acc"], 4),
            "val_pgd_acc": round(record["val_pgd_acc"], 4),
            "val_pgd_steps": record["val_pgd_steps"],
            "delta_energy": round(record["delta_energy"], 4),
            "train_seconds": round(sum(h["seconds"] for h in history)),
        }
    )
    with _averaged_weights(model, ema):
        model.save_pretrained(folder)
