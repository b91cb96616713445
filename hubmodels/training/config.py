"""TrainConfig: every setting of a training run, in one JSON-able dataclass.

The CLI flags are generated from the fields (``--der-lambda`` for ``der_lambda``), so the
command line, ``run_config.json`` in the output folder and the checkpoint's recorded recipe
always agree. Defaults follow WEAT's CIFAR-10 recipe (docs/methods.md 2.5) except where a field
says.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SCHEDULES = ("onecycle", "piecewise", "cyclic", "constant")


def _opt(help_text: str, default: Any, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help_text, **kw})


@dataclass
class TrainConfig:
    # data
    dataset: str = _opt("dataset: {datasets}", "fashion-mnist")
    data_root: str | None = _opt("folder holding the data (default: the registry's own)", None)
    download: bool = _opt("let torchvision download CIFAR/SVHN/MNIST (needs internet)", False)
    val_size: int = _opt("training images held out for model selection", 1000)
    train_subset: int | None = _opt("train on only this many images (class-balanced)", None)
    augment: bool = _opt("random crop (+flip where it makes sense)", True)
    label_noise: float = _opt(
        "fraction of training labels given a wrong class (seeded; val/test keep theirs)", 0.0
    )
    normalize: bool = _opt("store the dataset mean/std in the model (WEAT uses none)", False)
    # model
    architecture: str = _opt("backbone: {architectures}", "small_cnn")
    # method
    method: str = _opt(
        "standard | pgd_at | trades | weat_adv | weat_nat | fgsm | rs_fgsm | n_fgsm", "weat_adv"
    )
    beta: float = _opt("TRADES/WEAT KL weight beta = 1/lambda", 6.0)
    weat_reduction: str = _opt(
        "WEAT's weighted sum over the batch divided by: batch (B, as WEAT's code) | weights "
        "(the sum of the weights, a weighted mean whose step size matches TRADES's)",
        "batch",
    )
    label_smoothing: float = _opt(
        "mix this much of the uniform target into CE (standard, pgd_at and the FGSM family)", 0.0
    )
    der_lambda: float = _opt("DER weight lambda; 0 disables DER", 0.0)
    der_form: str = _opt(
        "DER penalty: joint (best supported by our overfitting grids) | squared | absolute | "
        "hinge | relative",
        "joint",
    )
    der_weighted: bool = _opt("weight each DER term by the WEAT weight w(x)", False)
    der_at: str = _opt(
        "where DER measures E(x) - E(x'): adversarial (the method's own) | uniform | pgd2",
        "adversarial",
    )
    # threat model and training attack
    norm: str = _opt("threat model norm: linf | l2", "linf")
    epsilon: float = _opt("threat radius on the [0, 1] scale", 8 / 255)
    alpha: float | None = _opt("attack step; default epsilon/4 (2/255 at 8/255)", None)
    attack_steps: int = _opt("training attack steps (multi-step methods)", 10)
    attack_bn: str = _opt(
        "BatchNorm during single-step attacks: eval (running statistics) | train (batch's)",
        "eval",
    )
    val_attack_steps: int = _opt("PGD steps for model selection on the validation split", 20)
    # optimisation
    epochs: int = _opt("training epochs", 100)
    batch_size: int = _opt("per-process batch size", 128)
    lr: float = _opt("peak learning rate", 0.1)
    momentum: float = _opt("SGD momentum", 0.9)
    weight_decay: float = _opt("SGD weight decay", 5e-4)
    schedule: str = _opt(
        "onecycle (WEAT) | piecewise (Rice et al.: x0.1 at 50%% and 75%%) | cyclic | constant",
        "onecycle",
    )
    grad_accum: int = _opt("gradient accumulation steps", 1)
    channels_last: bool = _opt("keep conv weights channels-last (about 20%% faster on CPUs)", True)
    mixed_precision: str = _opt("no | fp16 | bf16 (accelerate)", "no")
    ema_decay: float | None = _opt("keep an EMA of the weights with this decay (e.g. 0.999)", None)
    # diagnostics and bookkeeping
    energy_subset: int = _opt("fixed training images for the delta-energy diagnostics", 1000)
    eval_batch_size: int = _opt("batch size for validation and diagnostics", 256)
    seed: int = _opt("random seed", 0)
    num_workers: int = _opt("data loader workers", 0)
    output_dir: str = _opt("run folder: state/, best/, last/, metrics.jsonl, plot", "runs/train")
    resume: bool = _opt("continue from output_dir/state if it exists", False)
    push_to_hub: str | None = _opt("push the best checkpoint to this hub repo id", None)
    fit_prior: bool = _opt(
        "fit the sampling prior into best/ and last/ at the end, so `sample` works on them", True
    )
    command: str | None = _opt("the command that launched the run (recorded, not parsed)", None)

    def __post_init__(self) -> None:
        # Checked here, not at the first training step, so a misspelt recipe fails before any
        # dataset download or GPU time. Imported here so this module stays free of torch.
        from hubmodels.training.losses import (
            CE_METHODS,
            DER_FORMS,
            DER_POINTS,
            LOSSES,
            SINGLE_STEP,
            WEAT_METHODS,
            WEAT_REDUCTIONS,
        )

        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {SCHEDULES}")
        if self.method not in LOSSES:
            raise ValueError(f"unknown method {self.method!r}; choose one of {tuple(LOSSES)}")
        if self.der_form not in DER_FORMS:
            raise ValueError(f"unknown DER form {self.der_form!r}; choose one of {DER_FORMS}")
        if self.der_at not in DER_POINTS:
            raise ValueError(f"unknown DER point {self.der_at!r}; choose one of {DER_POINTS}")
        if self.weat_reduction not in WEAT_REDUCTIONS:
            raise ValueError(
                f"unknown weat_reduction {self.weat_reduction!r}; choose one of {WEAT_REDUCTIONS}"
            )
        if self.weat_reduction != "batch" and self.method not in WEAT_METHODS:
            raise ValueError("weat_reduction applies to weat_adv and weat_nat only")
        if self.attack_bn not in ("eval", "train"):
            raise ValueError(f"attack_bn is eval or train, got {self.attack_bn!r}")
        if self.attack_bn == "train" and self.method not in SINGLE_STEP:
            raise ValueError("attack_bn=train applies to the single-step methods only")
        if self.alpha is None:
            self.alpha = self.epsilon / 4
        for name in ("epochs", "batch_size", "grad_accum", "val_size", "energy_subset"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.label_noise <= 1.0:
            raise ValueError(f"label_noise is a fraction in [0, 1], got {self.label_noise}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing is in [0, 1), got {self.label_smoothing}")
        if self.label_smoothing and self.method not in CE_METHODS:
            raise ValueError(f"label_smoothing applies to {CE_METHODS}, not {self.method!r}")
        if self.epsilon < 0 or self.der_lambda < 0:
            raise ValueError("epsilon and der_lambda must be non-negative")

    @property
    def method_name(self) -> str:
        """The recipe's name as it appears in model cards, e.g. "pgd_at+der"."""
        return self.method + ("+der" if self.der_lambda > 0 else "")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
