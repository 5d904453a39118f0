"""``litepose synth``: write a SynthPose dataset (synthetic multi-person COCO-17 keypoints)."""

from __future__ import annotations

import argparse

HELP = "write a SynthPose dataset: synthetic multi-person images with COCO-format keypoint annotations"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", required=True, help="folder to write (images/*.jpg and annotations.json)")
    p.add_argument("--images", type=int, required=True, help="number of images")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same dataset)")
    p.add_argument("--size", default="320x256", help="image size WIDTHxHEIGHT (default 320x256)")
    p.add_argument(
        "--sequence", type=int, default=0, metavar="FRAMES",
        help="write sequences of FRAMES frames: people move smoothly and keep track_id (default: still images)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import json

    from ..data.synth import make_synthpose

    path = make_synthpose(args.output, args.images, seed=args.seed, size=args.size, sequence=args.sequence)
    data = json.loads(path.read_text())
    people = sum(1 for a in data["annotations"] if not a["iscrowd"])
    crowds = len(data["annotations"]) - people
    print(f"wrote {len(data['images'])} images, {people} people, {crowds} crowd regions to {args.output}")
    print(f"annotations: {path}")
    return 0
