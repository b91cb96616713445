"""``python -m hubmodels push``: upload a checkpoint folder to the Hub, once it loads."""

from __future__ import annotations

import argparse

HELP = "upload a save_pretrained folder to the Hub"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder")
    parser.add_argument("repo_id", help="org/name")
    parser.add_argument("--token", help="default: the cached login or HF_TOKEN")
    parser.add_argument("--private", action="store_true", help="create the repo private")


def run(args: argparse.Namespace) -> None:
    from hubmodels.classifiers import RobustClassifier
    from hubmodels.hub import push_folder

    RobustClassifier.from_pretrained(args.folder)  # refuse to publish what would not load
    url = push_folder(args.folder, args.repo_id, token=args.token, private=args.private)
    print(f"pushed {args.folder} to {args.repo_id}: {url}")
