"""``litepose synth``: write a SynthPose dataset (synthetic multi-person COCO-17 keypoints)."""

from __future__ import annotations

import argparse

HELP = "write a SynthPose dataset: synthetic multi-person images with COCO-format keypoint annotations"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from . import _options as o

    p.add_argument("--num-images", metavar="N", type=int, default=None, help="number of images (required)")
    # --images names an image folder in val and transfer; here it was the count, and is refused now
    p.add_argument("--images", dest="images_renamed", default=None, help=argparse.SUPPRESS)
    o.add_option(p, "--seed")
    p.add_argument("--size", default="320x256", help="image size WIDTHxHEIGHT, 32 to 4096 a side (default 320x256)")
    p.add_argument(
        "--sequence", type=int, default=0, metavar="FRAMES",
        help="write sequences of FRAMES frames: people move smoothly and keep track_id (default: still images)",
    )  # fmt: skip
    o.add_output_option(p, "folder", "the dataset: images/*.jpg and annotations.json", required=True)
    o.add_json_option(p)


def run(args: argparse.Namespace) -> int:
    from ..data.jsonio import read_json
    from ..data.synth import make_synthpose
    from ._options import emit, output_folder

    if args.images_renamed is not None:
        raise ValueError("--images is now --num-images (--images names an image folder in val and transfer)")
    if args.num_images is None:
        raise ValueError("give --num-images N, the number of images to write")
    output_folder(args.output, make=False)
    path = make_synthpose(args.output, args.num_images, seed=args.seed, size=args.size, sequence=args.sequence)
    data = read_json(path, "annotation file")
    people = sum(1 for a in data["annotations"] if not a["iscrowd"])
    crowds = len(data["annotations"]) - people
    summary = {
        "output": str(args.output),
        "annotations": str(path),
        "images": len(data["images"]),
        "people": people,
        "crowd_regions": crowds,
    }
    emit(
        args,
        summary,
        f"wrote {summary['images']} images, {people} people, {crowds} crowd regions to {args.output}\n"
        f"annotations: {path}",
    )
    return 0
