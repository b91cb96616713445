"""What a CLIP^-1 step costs next to the encoder it inverts, side by side in one run.

Rows, side by side: same encoder, same number n of augmentations, same resolution:

* **encoder only**: forward + backward of the encoder on a fixed batch of n augmented images
  (the floor: no inversion method can take less per step);
* **CLIP^-1 step**: ``CLIPInverter``'s real loop (render the FINER INR, augment in one batched
  grid_sample, one batched encoder call, loss, backward, Adam with the layer sweep), on the
  inverter's coarser render grid (``--render-resolution``, the default) and on the full grid;
* **deep-daze-like**: a SIREN of the same size whose n cutouts are encoded one call at a time,
  as deep-daze does.

Target (CLIP^-1 issue): CLIP^-1 step / encoder only <= 1.15. Also prints the wall time of a
whole ``text_to_image`` call at the given steps. Random weights are fine for timing
(``--pretrained`` omitted); nothing is said about image quality.

    python bench/inversion_cost.py --clip ViT-B-32 --n 16 --resolution 224 --steps 5
    python bench/inversion_cost.py --device cuda --steps 20 --full-steps 400   # on a GPU
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import warnings

import torch

from hubmodels import CLIPInverter
from hubmodels.inversion.augment import augment
from hubmodels.inversion.finer import FinerNet
from hubmodels.inversion.inverter import RENDER_RESOLUTION
from hubmodels.inversion.procrustes import cosine_distance


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def per_step(step, steps: int, device: torch.device) -> float:
    """Seconds per call of ``step()``, after one warm-up call."""
    step()
    synchronise(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronise(device)
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default="ViT-B-32")
    parser.add_argument("--pretrained", default=None)
    parser.add_argument("--n", type=int, default=16, help="augmentations per step")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per row")
    parser.add_argument("--full-steps", type=int, default=0, help="also time a whole call")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--render-resolution",
        type=int,
        default=RENDER_RESOLUTION,
        help="INR grid while optimising (capped at --resolution)",
    )
    parser.add_argument("--inr-width", type=int, default=256)
    parser.add_argument("--hidden-layers", type=int, default=4)
    args = parser.parse_args()

    device = torch.device(args.device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights warn; timing does not care
        inverter = CLIPInverter(
            clip=args.clip,
            pretrained=args.pretrained,
            resolution=args.resolution,
            render_resolution=args.render_resolution,
            augment={"n": args.n},
            inr={"width": args.inr_width, "hidden_layers": args.hidden_layers},
            device=device,
        )
    encoder = inverter.encoder
    target = torch.nn.functional.normalize(torch.randn(encoder.embed_dim, device=device), dim=0)
    generator = torch.Generator().manual_seed(0)

    # Every row autocasts the encoder to bf16 on a GPU, as the inverter does.
    # 1. The floor: the encoder alone on a fixed augmented batch.
    batch = augment(
        torch.rand(1, 3, args.resolution, args.resolution, device=device),
        inverter.augment_config,
        encoder.input_size,
        generator,
    ).requires_grad_(True)

    def encoder_only() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            embedding = encoder.encode_image(batch).float()
        embedding = torch.nn.functional.normalize(embedding, dim=-1).mean(0)
        cosine_distance(embedding, target).backward()

    # 2. The real CLIP^-1 loop, timed per step through its own callback-free run, on the
    # inverter's render grid and on the full output grid.
    def clip_inverse_step(steps: int, grid: int | None) -> float:
        engine = inverter.engine.replace(render_resolution=grid)
        engine.optimise(engine.new_net(0), [(target, 1.0)], steps=1, seed=0)  # warm
        synchronise(device)
        started = time.perf_counter()
        engine.optimise(engine.new_net(0), [(target, 1.0)], steps=steps, seed=0)
        synchronise(device)
        return (time.perf_counter() - started) / steps

    # 3. deep-daze-like: SIREN, each cutout through the encoder on its own.
    siren = FinerNet(dataclasses.replace(inverter.inr_config, activation="siren")).to(device)
    siren_optimizer = torch.optim.Adam(siren.parameters(), lr=1e-4)

    def deep_daze_like() -> None:
        image = siren.render(args.resolution, args.resolution)
        cutouts = augment(image, inverter.augment_config, encoder.input_size, generator)
        embeddings = []
        for cutout in cutouts:  # one encoder call per cutout
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                embeddings.append(encoder.encode_image(cutout[None]).float())
        embedding = torch.nn.functional.normalize(torch.cat(embeddings), dim=-1).mean(0)
        siren_optimizer.zero_grad(set_to_none=True)
        cosine_distance(embedding, target).backward()
        siren_optimizer.step()

    floor = per_step(encoder_only, args.steps, device)
    grid = min(args.render_resolution, args.resolution)
    ours = clip_inverse_step(args.steps, grid)
    full_grid = clip_inverse_step(args.steps, None) if grid < args.resolution else ours
    baseline = per_step(deep_daze_like, args.steps, device)

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"{args.clip} ({args.pretrained or 'random weights'}), n={args.n}, "
        f"{args.resolution}px, INR {inverter.inr_config.to_dict()}, {name}, "
        f"{torch.get_num_threads()} threads, {args.steps} timed steps per row"
    )
    print(f"{'row':<34} {'s/step':>8} {'ratio to encoder':>17}")
    for label, seconds in (
        ("encoder fwd+bwd only", floor),
        (f"CLIP^-1 step, {grid}px grid", ours),
        (f"CLIP^-1 step, {args.resolution}px grid", full_grid),
        ("deep-daze-like (SIREN, 1/call)", baseline),
    ):
        print(f"{label:<34} {seconds:8.3f} {seconds / floor:17.2f}")
    print(f"\nCLIP^-1 / encoder: {ours / floor:.2f} (target <= 1.15)")
    print(f"deep-daze-like / CLIP^-1: {baseline / ours:.2f}")
    if args.full_steps:
        started = time.perf_counter()
        inverter.text_to_image("a lighthouse at dusk", num_inference_steps=args.full_steps, seed=0)
        synchronise(device)
        print(f"text_to_image, {args.full_steps} steps: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
