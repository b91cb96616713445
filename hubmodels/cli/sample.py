"""``python -m hubmodels sample``: class-conditional samples as PNGs or one ``.npz``.

Sampling splits its work into fixed batches, each seeded by (seed, batch index), and hands the
batches to processes with accelerate's ``PartialState``: ``accelerate launch -m hubmodels sample``
on any number of processes writes exactly the images one process would.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

from hubmodels.images import image_grid
from hubmodels.sampling.priors import INITS
from hubmodels.sampling.sampler import SamplerSettings

HELP = "class-conditional samples (PNGs or .npz)"
SAMPLE_BATCH = 100  # images per seeded work unit
SAMPLER_HELP = {
    "scale": "spread of the start, in the prior's component standard deviations",
    "steps": "SGLD steps (the cap, with --adaptive-stop)",
    "step_size": "SGLD step size eta",
    "momentum": "momentum of the SGLD update",
    "noise_std": "standard deviation of the Langevin noise",
    "guidance": "DER's energy guidance toward the class's real energy",
    "adaptive_stop": "DER's adaptive stop: freeze a sample once its energy looks real",
    "tolerance": "the stop's tolerance, in units of the class's real-energy std",
    "classifier_weight": "gamma: sample p(x|y) p(y|x)^gamma (adds gamma * cross-entropy)",
    "reject": "drop samples the model does not classify as their class",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="preset name, folder or hub id")
    parser.add_argument("--classes", nargs="*", help="class names or indices; all when omitted")
    parser.add_argument("--n-per-class", type=int, default=16, help="samples of each class")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same images")
    parser.add_argument("--out", default="samples", help="folder for the images")
    parser.add_argument(
        "--format", choices=["png", "npz"], default="png", help="PNGs and a grid, or arrays"
    )
    parser.add_argument(
        "--init", choices=INITS, default=SamplerSettings.init, help="where sampling starts"
    )
    for f in dataclasses.fields(SamplerSettings):
        if f.name == "init":
            continue
        flag = "--" + f.name.replace("_", "-")
        text = SAMPLER_HELP[f.name]
        if isinstance(f.default, bool):
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=f.default, help=text
            )
        else:
            parser.add_argument(flag, type=type(f.default), default=f.default, help=text)


def run(args: argparse.Namespace) -> None:
    from accelerate import PartialState
    from tqdm.auto import tqdm

    from hubmodels.classifiers import RobustClassifier
    from hubmodels.sampling.generate import resolve_classes

    state = PartialState()
    model = RobustClassifier.from_pretrained(args.model, map_location=state.device)
    if model.prior is None:  # say so before any progress bar, with the command that fixes it
        raise ValueError(
            f"{args.model} has no sampling prior yet (trained with --no-fit-prior, or saved "
            "without one); run "
            f"`python -m hubmodels fit-prior --model {args.model}` once, then sample"
        )
    settings = SamplerSettings(
        **{f.name: getattr(args, f.name) for f in dataclasses.fields(SamplerSettings)}
    )
    classes = resolve_classes(model, _parse_classes(args.classes))
    if args.n_per_class < 1:
        raise ValueError("--n-per-class must be at least 1")
    # Work units: (class, first index, count), each seeded independently of the process count.
    units = [
        (c, start, min(SAMPLE_BATCH, args.n_per_class - start))
        for c in classes
        for start in range(0, args.n_per_class, SAMPLE_BATCH)
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    with state.split_between_processes(list(enumerate(units))) as mine:
        for unit_index, (c, start, count) in tqdm(
            mine, disable=not state.is_main_process, desc="sampling"
        ):
            result = model.sample(
                [c], count, seed=args.seed * 100_003 + unit_index, settings=settings
            )
            parts.append((c, start, result))
            if args.format == "png":
                folder = out / _safe(model.class_names[c])
                folder.mkdir(exist_ok=True)
                for k, image in enumerate(result.images):
                    image.save(folder / f"{start + k:05d}.png")
    if args.format == "npz" and parts:
        np.savez_compressed(out / f"part-{state.process_index:03d}.npz", **_arrays(parts))
    state.wait_for_everyone()
    if state.is_main_process:
        if args.format == "npz":
            _merge_parts(out)
        grid = _grid(out, args.format, model, classes, min(args.n_per_class, 10))
        print(
            f"{len(units)} batches, {len(classes) * args.n_per_class} samples in {out}; "
            f"grid: {grid}"
        )


def _parse_classes(classes: list[str] | None) -> list[str | int] | None:
    if not classes:
        return None
    return [int(c) if c.isdigit() else c for c in classes]


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def _arrays(parts) -> dict[str, np.ndarray]:
    images = torch.cat([r.tensors for _, _, r in parts])
    return {
        "images": (images * 255).round().to(torch.uint8).numpy(),
        "labels": np.array([label for _, _, r in parts for label in r.labels]),
        "index": np.array([start + k for _, start, r in parts for k in range(len(r.labels))]),
        "energies": np.array([e for _, _, r in parts for e in r.energies], dtype=np.float32),
        "steps": np.array([s for _, _, r in parts for s in r.steps]),
    }


def _merge_parts(out: Path) -> None:
    files = sorted(out.glob("part-*.npz"))
    loaded = [dict(np.load(f)) for f in files]
    merged = {k: np.concatenate([p[k] for p in loaded]) for k in loaded[0]}
    order = np.lexsort((merged["index"], merged["labels"]))
    np.savez_compressed(out / "samples.npz", **{k: v[order] for k, v in merged.items()})
    for f in files:
        f.unlink()


def _grid(out: Path, fmt: str, model, classes: list[int], per_row: int) -> Path:
    """One row per class, ``per_row`` samples each, 2-pixel black gaps, written to out/grid.png."""
    from PIL import Image
    from torchvision.transforms.functional import pil_to_tensor

    if fmt == "npz":
        data = np.load(out / "samples.npz")
        rows = [torch.from_numpy(data["images"][data["labels"] == c][:per_row]) for c in classes]
    else:
        rows = [
            torch.stack(
                [
                    pil_to_tensor(Image.open(p))
                    for p in sorted((out / _safe(model.class_names[c])).glob("*.png"))[:per_row]
                ]
            )
            for c in classes
        ]
    grid = image_grid(torch.cat(rows).float() / 255, per_row, padding=2, pad_value=0)
    path = out / "grid.png"
    grid.crop((2, 2, grid.width, grid.height)).save(path)  # gaps after each sample only
    return path
