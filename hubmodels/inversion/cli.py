"""``python -m hubmodels invert {text,reconstruct,style}`` and ``python -m hubmodels build-bank``.

Both show a progress bar; ``invert`` writes a PNG whose text metadata holds every setting that
made it. ``build-bank`` splits the images across processes with accelerate's ``PartialState``
(``accelerate launch -m hubmodels build-bank ...``): each process fits its share of anchors into a
shard, and the main process merges the shards in image order, so the bank does not depend on the
number of processes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_CLIP = "ViT-B-32"
INVERTER_FLAGS = ("clip", "pretrained", "resolution", "lr", "neighbours", "blend_weight")


def _add_inverter_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--clip", help="open_clip name (default ViT-B-32, or the --bank's), timm:NAME, ..."
    )
    parser.add_argument(
        "--pretrained",
        help="open_clip tag (openai) or a local weights file; 'random' (or omitting it) gives "
        "random weights, for trying the pipeline only: their images mean nothing",
    )
    parser.add_argument(
        "--bank",
        help="a saved CLIPInverter with its bank (folder or hub id); its settings are used, "
        "except --clip / --pretrained when given",
    )
    parser.add_argument("--resolution", type=int, default=224, help="encoder input size (px)")
    parser.add_argument("--lr", type=float, default=1e-4, help="peak lr of the layer sweep")
    parser.add_argument("--neighbours", type=int, default=32, help="k for Procrustes/blending")
    parser.add_argument(
        "--blend-weight", type=float, default=0.3, help="weight of the real-image blending loss"
    )


def add_invert_arguments(parser: argparse.ArgumentParser) -> None:
    tasks = parser.add_subparsers(dest="task", required=True)
    text = tasks.add_parser("text", help="text-to-image")
    text.add_argument("prompt")
    text.add_argument("--negative", help="negative prompt")
    recon = tasks.add_parser("reconstruct", help="an image from its embedding")
    recon.add_argument("image")
    style = tasks.add_parser("style", help="style transfer")
    style.add_argument("content")
    group = style.add_mutually_exclusive_group(required=True)
    group.add_argument("--style", help="style as text, e.g. 'an oil painting'")
    group.add_argument("--style-image", help="style as an image file")
    for task in (text, recon, style):
        _add_inverter_arguments(task)
        task.add_argument("--steps", type=int, default=400, help="optimisation steps")
        task.add_argument("--seed", type=int, default=0, help="same seed, same image")
        task.add_argument("--out", default="out.png", help="PNG to write (settings inside)")


def _inverter(args: argparse.Namespace):
    from hubmodels.inversion.inverter import CLIPInverter

    if args.bank:
        return CLIPInverter.from_pretrained(args.bank, clip=args.clip, pretrained=args.pretrained)
    return CLIPInverter(**_settings(args))


def _settings(args: argparse.Namespace) -> dict:
    settings = {k: getattr(args, k) for k in INVERTER_FLAGS}
    settings["clip"] = settings["clip"] or DEFAULT_CLIP
    return settings


def run_invert(args: argparse.Namespace) -> None:
    from tqdm.auto import tqdm

    from hubmodels.inversion.images import save_png

    inverter = _inverter(args)
    bar = tqdm(total=args.steps, desc=f"invert {args.task}")

    def advance(step: int, _image, loss: float) -> None:
        bar.update(step - bar.n)
        bar.set_postfix(loss=f"{loss:.4f}")

    common = dict(num_inference_steps=args.steps, seed=args.seed, callback=advance)
    if args.task == "text":
        out = inverter.text_to_image(args.prompt, args.negative, **common)
    elif args.task == "reconstruct":
        out = inverter.reconstruct(args.image, **common)
    else:
        out = inverter.style_transfer(args.content, args.style or args.style_image, **common)
    bar.close()
    path = save_png(out.images[0], args.out, out.settings)
    print(f"{path}: final loss {out.losses[-1]:.4f}, seed {out.settings['seed']}")


def add_build_bank_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", required=True, help="folder of images")
    parser.add_argument("--captions", required=True, help='JSON lines {"file": , "caption": }')
    _add_inverter_arguments(parser)
    parser.add_argument("--out", required=True, help="folder for the saved CLIPInverter + bank")
    parser.add_argument("--anchor-steps", type=int, default=500, help="AWP fit steps per image")
    parser.add_argument(
        "--anchor-resolution", type=int, default=64, help="render size while fitting anchors"
    )
    parser.add_argument("--gamma", type=float, default=5e-3, help="AWP radius (0: no AWP)")
    parser.add_argument("--blur-sigma", type=float, default=1.0, help="pixels at that resolution")
    parser.add_argument("--seed", type=int, default=0, help="seeds every anchor fit")
    parser.add_argument("--push-to-hub", metavar="ORG/NAME")


def run_build_bank(args: argparse.Namespace) -> None:
    from accelerate import PartialState
    from tqdm.auto import tqdm

    from hubmodels.inversion.bank import AnchorBank
    from hubmodels.inversion.build_bank import build_bank, read_captions
    from hubmodels.inversion.inverter import CLIPInverter

    state = PartialState()
    pairs = read_captions(args.images, args.captions)
    inverter = CLIPInverter(**_settings(args), device=state.device)
    out = Path(args.out)
    shards = out / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    indexed = list(enumerate(pairs))
    with state.split_between_processes(indexed) as mine:
        if mine:
            bar = tqdm(total=len(mine), desc="anchors", disable=not state.is_main_process)
            shard = build_bank(
                inverter,
                [pair for _, pair in mine],
                anchor_resolution=args.anchor_resolution,
                anchor_steps=args.anchor_steps,
                gamma=args.gamma,
                blur_sigma=args.blur_sigma,
                seed=args.seed + mine[0][0],
                progress=bar.update,
            )
            bar.close()
            shard.save(shards / f"{mine[0][0]:08d}")
    state.wait_for_everyone()
    if state.is_main_process:
        parts = sorted(p for p in shards.iterdir() if p.is_dir())
        bank = AnchorBank.concatenate([AnchorBank.load(p) for p in parts])
        inverter.use_bank(bank).save_pretrained(out)
        for part in parts:
            for f in part.iterdir():
                f.unlink()
            part.rmdir()
        shards.rmdir()
        size = sum(f.stat().st_size for f in out.iterdir() if f.is_file()) / 2**20
        print(f"bank of {len(bank)} anchors ({inverter.encoder.name}) in {out}, {size:.1f} MiB")
        if args.push_to_hub:
            print(f"pushed: {inverter.push_to_hub(args.push_to_hub)}")
