"""``python -m hubmodels build-bank``: fit AWP anchors for a CLIP^-1 bank.

The images are split across processes with accelerate's ``PartialState`` (``accelerate launch -m
hubmodels build-bank ...``): each process fits its share of anchors into a shard, and the main
process merges the shards in image order, so the bank does not depend on the number of processes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hubmodels.cli.inverter_options import add_inverter_arguments, inverter_settings

HELP = "fit AWP anchors for a CLIP^-1 bank"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", required=True, help="folder of images")
    parser.add_argument("--captions", required=True, help='JSON lines {"file": , "caption": }')
    add_inverter_arguments(parser, bank=False)
    parser.add_argument("--out", required=True, help="folder for the saved CLIPInverter + bank")
    parser.add_argument("--anchor-steps", type=int, default=500, help="AWP fit steps per image")
    parser.add_argument(
        "--anchor-resolution", type=int, default=64, help="render size while fitting anchors"
    )
    parser.add_argument("--gamma", type=float, default=5e-3, help="AWP radius (0: no AWP)")
    parser.add_argument("--blur-sigma", type=float, default=1.0, help="pixels at that resolution")
    parser.add_argument("--seed", type=int, default=0, help="seeds every anchor fit")
    parser.add_argument("--push-to-hub", metavar="ORG/NAME")


def run(args: argparse.Namespace) -> None:
    from accelerate import PartialState
    from tqdm.auto import tqdm

    from hubmodels.inversion.bank import AnchorBank
    from hubmodels.inversion.build_bank import build_bank, read_captions
    from hubmodels.inversion.inverter import CLIPInverter

    state = PartialState()
    pairs = read_captions(args.images, args.captions)
    # bank=None: the bank built here replaces the shipped one, whose keys are never needed.
    inverter = CLIPInverter(**inverter_settings(args), bank=None, device=state.device)
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
