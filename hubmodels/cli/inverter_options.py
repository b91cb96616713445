"""The ``CLIPInverter`` flags ``invert`` and ``build-bank`` share, and the inverter they make."""

from __future__ import annotations

import argparse

DEFAULT_CLIP = "ViT-B-32"
INVERTER_FLAGS = ("clip", "pretrained", "resolution", "lr", "neighbours", "blend_weight")


def add_inverter_arguments(parser: argparse.ArgumentParser, bank: bool = True) -> None:
    """The shared flags; ``bank=False`` leaves out --bank (build-bank makes a bank instead)."""
    parser.add_argument(
        "--clip", help="open_clip name (default ViT-B-32, or the --bank's), timm:NAME, ..."
    )
    parser.add_argument(
        "--pretrained",
        help="open_clip tag (openai) or a local weights file; 'random' (or omitting it) gives "
        "random weights, for trying the pipeline only: their images mean nothing",
    )
    if bank:
        _add_bank_argument(parser)
    parser.add_argument("--resolution", type=int, default=224, help="encoder input size (px)")
    parser.add_argument("--lr", type=float, default=1e-4, help="peak lr of the layer sweep")
    parser.add_argument("--neighbours", type=int, default=32, help="k for Procrustes/blending")
    parser.add_argument(
        "--blend-weight", type=float, default=0.3, help="weight of the real-image blending loss"
    )


def _add_bank_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bank",
        default="builtin",
        help="'builtin' (default): the anchor bank shipped in the package, its keys computed "
        "with the encoder on first use; 'none': plain CLIP^-1 (no anchor, Procrustes or "
        "blending); or a saved CLIPInverter with its own bank (folder or hub id), whose "
        "settings are used except --clip / --pretrained when given",
    )


def inverter_from_args(args: argparse.Namespace):
    from hubmodels.inversion.inverter import CLIPInverter

    if args.bank not in (None, "builtin", "none"):
        return CLIPInverter.from_pretrained(args.bank, clip=args.clip, pretrained=args.pretrained)
    return CLIPInverter(**inverter_settings(args), bank=None if args.bank == "none" else "builtin")


def inverter_settings(args: argparse.Namespace) -> dict:
    settings = {k: getattr(args, k) for k in INVERTER_FLAGS}
    settings["clip"] = settings["clip"] or DEFAULT_CLIP
    return settings
