"""``RobustClassifier.sample`` and ``fit_prior``: the user-facing side of sampling.

Fitting stores the prior and the class reference energies in the model (and so in its
safetensors file); sampling needs nothing else, so ``from_pretrained(...).sample()`` works from
a hub checkpoint without any dataset.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from hubmodels.energy import joint_energy
from hubmodels.images import to_pil
from hubmodels.sampling.priors import PriorShape
from hubmodels.sampling.sampler import (
    MAX_SAMPLES,
    SamplerSettings,
    sgld,
)

if TYPE_CHECKING:
    from hubmodels.outputs import Callback
    from hubmodels.sampling.output import SampleOutput


def resolve_classes(model, classes: Sequence[str | int] | None) -> list[int]:
    """Class names or indices -> indices; None means every class."""
    names = model.class_names
    if classes is None:
        return list(range(len(names)))
    if isinstance(classes, (str, int)):
        classes = [classes]
    resolved = []
    for c in classes:
        if isinstance(c, bool) or not isinstance(c, (str, int)):
            raise ValueError(f"classes are names or indices, got {c!r}")
        if isinstance(c, str):
            if c not in names:
                raise ValueError(f"unknown class {c!r}; this model knows {names}")
            resolved.append(names.index(c))
        elif not 0 <= c < len(names):
            raise ValueError(f"class index {c} out of range 0..{len(names) - 1}")
        else:
            resolved.append(c)
    if not resolved:
        raise ValueError("no classes given")
    return resolved


@torch.no_grad()
def fit_prior(
    model,
    images: torch.Tensor,
    labels: torch.Tensor,
    shape: PriorShape | None = None,
    *,
    batch_size: int = 500,
    seed: int = 0,
) -> None:
    """Fit the priors and reference energies on training ``images`` (N, C, H, W) in [0, 1]."""
    shape = shape or PriorShape()
    if images.shape[1:] != torch.Size(model.input_shape):
        raise ValueError(f"images must be (N, {model.input_shape}), got {tuple(images.shape)}")
    model.eval()
    device = next(model.parameters()).device
    energies, features = [], []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device)
        y = labels[start : start + batch_size].to(device)
        energies.append(joint_energy(model(x), y).cpu())
        if shape.cluster_space == "features":
            features.append(model.features(x).cpu())
    energies = torch.cat(energies)
    model.attach_prior(shape)
    prior = model.prior
    prior.fit(
        images.flatten(1).cpu(),
        labels.cpu(),
        cluster_features=torch.cat(features) if features else None,
        seed=seed,
    )
    for y in range(prior.num_classes):
        # E_y and sigma_y: what guidance aims at and the unit of adaptive stopping's tolerance.
        prior.reference_energy[y] = energies[labels.cpu() == y].mean()
        prior.reference_energy_std[y] = energies[labels.cpu() == y].std()
    prior.to(device)


def sample(
    model,
    classes: Sequence[str | int] | None = None,
    n_per_class: int = 8,
    *,
    num_inference_steps: int | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    settings: SamplerSettings | None = None,
    batch_size: int = 256,
    callback: Callback | None = None,
    **overrides,
) -> SampleOutput:
    """Draw ``n_per_class`` samples for each class (see ``RobustClassifier.sample``)."""
    if settings is not None and overrides:
        raise TypeError("pass settings= or keyword overrides, not both")
    if num_inference_steps is not None:
        if "steps" in overrides:
            raise TypeError("pass num_inference_steps= or steps=, not both")
        overrides["steps"] = num_inference_steps
    settings = settings or SamplerSettings(**overrides)
    if num_inference_steps is not None and settings.steps != num_inference_steps:
        settings = dataclasses.replace(settings, steps=num_inference_steps)
    if getattr(model, "prior", None) is None:
        raise ValueError(
            "this checkpoint has no prior: fit one first with `python -m hubmodels fit-prior "
            "--model ... --data ...` (or RobustClassifier.fit_prior)"
        )
    indices = resolve_classes(model, classes)
    if not isinstance(n_per_class, int) or n_per_class < 1:
        raise ValueError(f"n_per_class must be a positive integer, got {n_per_class!r}")
    total = n_per_class * len(indices)
    if total > MAX_SAMPLES:
        raise ValueError(
            f"{total} samples requested; one call makes at most {MAX_SAMPLES}: "
            "use `python -m hubmodels sample` for large batches"
        )
    from hubmodels.outputs import resolve_seed  # here: the outputs module imports diffusers
    from hubmodels.sampling.output import SampleOutput

    seed = resolve_seed(generator, seed, default=0)  # sampling is reproducible by default
    device = next(model.parameters()).device
    noise = torch.Generator().manual_seed(seed)
    labels = torch.tensor(indices, device=device).repeat_interleave(n_per_class)
    images, energies, steps = [], [], []
    for start in range(0, total, batch_size):
        y = labels[start : start + batch_size]
        x0 = model.prior.sample(y, settings.init, settings.scale, noise)
        x0 = x0.view(len(y), *model.input_shape)
        x, e, s = sgld(
            model,
            x0,
            y,
            settings,
            reference_energy=model.prior.reference_energy,
            reference_energy_std=model.prior.reference_energy_std,
            generator=noise,
            callback=callback,
        )
        images.append(x), energies.append(e), steps.append(s)
    x, e, s = torch.cat(images), torch.cat(energies), torch.cat(steps)
    with torch.no_grad():
        accepted = model(x).argmax(1) == labels
    keep = accepted if settings.reject else torch.ones_like(accepted)
    return SampleOutput(
        images=to_pil(x[keep]),
        tensors=x[keep].cpu(),
        settings=dict(
            classes=[model.class_names[i] for i in indices],
            n_per_class=n_per_class,
            seed=seed,
            **dataclasses.asdict(settings),
        ),
        labels=labels[keep].tolist(),
        energies=e[keep].tolist(),
        steps=s[keep].tolist(),
        accepted=accepted[keep].tolist(),
    )
