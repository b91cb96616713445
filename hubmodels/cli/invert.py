"""``python -m hubmodels invert {text,reconstruct,style}``: CLIP^-1 with a progress bar; the
PNG it writes holds every setting that made it in its text metadata."""

from __future__ import annotations

import argparse

from hubmodels.cli.inverter_options import add_inverter_arguments, inverter_from_args

HELP = "CLIP^-1: text-to-image, reconstruct, style"


def add_arguments(parser: argparse.ArgumentParser) -> None:
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
        add_inverter_arguments(task)
        task.add_argument("--steps", type=int, default=400, help="optimisation steps")
        task.add_argument("--seed", type=int, default=0, help="same seed, same image")
        task.add_argument("--out", default="out.png", help="PNG to write (settings inside)")


def run(args: argparse.Namespace) -> None:
    from tqdm.auto import tqdm

    from hubmodels.images import save_png

    inverter = inverter_from_args(args)
    bar = tqdm(total=args.steps, desc=f"invert {args.task}")

    def advance(step: int, _image, info: dict) -> None:
        bar.update(step - bar.n)
        bar.set_postfix(loss=f"{info['loss']:.4f}")

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
