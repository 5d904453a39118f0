"""``litepose synth``: write a SynthPose dataset (synthetic multi-person COCO-17 keypoints)."""

from __future__ import annotations

import argparse
import sys

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
    p.add_argument(
        "--overwrite", action="store_true",
        help="write into an --output folder that is not empty (a dataset there is replaced: its images/NNNNNN.jpg "
        "and annotations.json; other files are left alone)",
    )  # fmt: skip
    o.add_json_option(p)


def run(args: argparse.Namespace) -> int:
    from ..data.jsonio import read_json
    from ..data.synth import make_synthpose, parse_size
    from ..files import LOCK_NAME, FolderLock, shown
    from ..interrupt import exit_code, graceful, stop_requested, stopped_by
    from ._options import emit, output_folder

    if args.images_renamed is not None:
        raise ValueError("--images is now --num-images (--images names an image folder in val and transfer)")
    if args.num_images is None:
        raise ValueError("give --num-images N, the number of images to write")
    out = output_folder(args.output, make=False)
    if args.num_images < 1:
        raise ValueError(f"--num-images must be at least 1, got {args.num_images}")
    parse_size(args.size)  # before the folder is made
    if args.sequence < 0:
        raise ValueError(f"--sequence must be 0 (still images) or more frames, got {args.sequence}")
    held = [p for p in out.iterdir() if p.name != LOCK_NAME] if out.is_dir() else []
    if held and not args.overwrite:
        raise ValueError(
            f"--output {shown(out)}: the folder is not empty ({len(held)} entries, e.g. {shown(held[0].name)}); "
            "give --overwrite to replace a dataset there, or choose an empty or new folder"
        )
    with FolderLock(out, "litepose synth"), graceful():
        for old in sorted((out / "images").glob("[0-9][0-9][0-9][0-9][0-9][0-9].jpg")) if held else []:
            old.unlink()  # --overwrite: the earlier dataset's images, so that none outlives its annotations
        path = make_synthpose(out, args.num_images, seed=args.seed, size=args.size, sequence=args.sequence)
    data = read_json(path, "annotation file")
    people = sum(1 for a in data["annotations"] if not a["iscrowd"])
    crowds = len(data["annotations"]) - people
    summary = {
        "output": shown(out),
        "annotations": shown(path),
        "images": len(data["images"]),
        "people": people,
        "crowd_regions": crowds,
    }
    text = (
        f"wrote {summary['images']} images, {people} people, {crowds} crowd regions to {shown(out)}\n"
        f"annotations: {shown(path)}"
    )
    if stop_requested():  # a signal between images: a whole dataset of the images written so far
        summary["stopped"] = stopped_by()
        done = f"{summary['images']} of {args.num_images} images"
        print(f"interrupted by {stopped_by()}: stopped after {done}", file=sys.stderr)
        emit(args, summary, text)
        return exit_code()
    emit(args, summary, text)
    return 0
