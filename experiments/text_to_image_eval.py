"""Text-to-image quality of CLIP^-1 with real CLIP weights: FID, KID, CLIP score, IS.

The protocol of docs/methods.md 4.8 on any captioned image set (MS-COCO val2017 captions in the
paper): one image per caption, FID / KID against the real images of the same captions (centre
crop, then the extractor's resize), CLIP score with a *different* CLIP than the one inverted, and
IS when the extractor has logits (torch-fidelity's standard Inception does; the offline
TorchScript one does not). Needs CLIP weights, so it was not run on our offline machines. With
weights and MS-COCO on disk:

    # captions.jsonl: {"file": "000000397133.jpg", "caption": "A man is in a kitchen ..."} per line
    python experiments/text_to_image_eval.py --captions coco/captions_val2017.jsonl \
        --images coco/val2017 --n 1000 --clip ViT-B-32 --pretrained openai --bank org/my-bank \
        --judge-clip ViT-L-14 --judge-pretrained openai --steps 400 --out runs/t2i-coco1k

(1,000 captions is the paper's ablation scale; its FIDs are not comparable with 10k-sample ones.)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from hubmodels.images import centre_square, load_image, save_png
from hubmodels.inversion.build_bank import read_captions
from hubmodels.inversion.encoders import OpenCLIPEncoder
from hubmodels.inversion.inverter import CLIPInverter
from hubmodels.metrics import clip_score, extract_features, fid_kid, inception_extractor

REFERENCE_SIZE = 256  # real images are centre-cropped and resized to this before the extractor


def weights(tag: str) -> str | None:
    """'random' (or '') means random weights: for testing this script, never for results."""
    return None if tag.lower() in ("", "random") else tag


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captions", required=True, help='JSON lines {"file": , "caption": }')
    parser.add_argument("--images", required=True, help="folder of the real images")
    parser.add_argument("--n", type=int, default=1000, help="captions used (the first n)")
    parser.add_argument("--clip", default="ViT-B-32")
    parser.add_argument("--pretrained", default="openai", type=weights)
    parser.add_argument("--bank", help="a saved CLIPInverter with a bank (folder or hub id)")
    parser.add_argument("--judge-clip", default="ViT-L-14")
    parser.add_argument("--judge-pretrained", default="openai", type=weights)
    parser.add_argument("--fid-weights", help="offline FID Inception; default torch-fidelity's")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    return parser


def main(argv: list[str] | None = None, extractor=None) -> dict:
    """Run the evaluation; ``extractor`` overrides the FID Inception (tests use a tiny one)."""
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pairs = read_captions(args.images, args.captions)[: args.n]
    if args.bank:
        inverter = CLIPInverter.from_pretrained(
            args.bank, clip=args.clip, pretrained=args.pretrained
        )
    else:
        inverter = CLIPInverter(args.clip, args.pretrained, resolution=args.resolution)
    judge = OpenCLIPEncoder(args.judge_clip, args.judge_pretrained).to(inverter.device)
    extractor = extractor or inception_extractor(args.fid_weights, device=inverter.device)

    generated, started = [], time.perf_counter()
    for i, (_, caption) in enumerate(pairs):
        result = inverter.text_to_image(caption, num_inference_steps=args.steps, seed=args.seed + i)
        save_png(result.images[0], out / f"{i:05d}.png", result.settings)
        generated.append(load_image(result.images[0]))
    seconds = time.perf_counter() - started
    fake = torch.cat(generated)
    real = torch.cat([centre_square(load_image(path), REFERENCE_SIZE) for path, _ in pairs])
    real_features, _ = extract_features(real, extractor)
    scores = fid_kid(real_features, fake, extractor)
    judged = clip_score(fake, [caption for _, caption in pairs], judge)
    report = {
        "n": len(pairs),
        "inverted": inverter.encoder.name,
        "bank": len(inverter.bank) if inverter.bank is not None else 0,
        "steps": args.steps,
        "seconds_per_image": seconds / len(pairs),
        "fid": scores["fid"],
        "kid": scores["kid_mean"],
        "inception_score": scores.get("is_mean"),
        "feature_extractor": extractor.name,
        "clip_score": judged["clip_score"],
        "clip_score_judge": judged["encoder"],
    }
    (out / "results.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
