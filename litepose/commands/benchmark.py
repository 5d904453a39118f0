"""``litepose benchmark``: per-stage latency and FPS of every backend side by side, flip and no flip."""

from __future__ import annotations

import argparse

HELP = "time every backend side by side on one image: per-stage latency (median/min/max) and FPS"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from . import _options as o

    o.add_model_options(p)
    o.add_inference_options(p)
    o.add_device_options(p)
    p.add_argument("--image", metavar="IMG", default=None, help="image to time on (default: a generated 640x480 one)")
    p.add_argument("--runs", metavar="N", type=int, default=20, help="timed runs per row (default 20)")
    p.add_argument("--warmup", metavar="N", type=int, default=3, help="untimed runs first (default 3)")
    o.add_option(p, "--int8-images")
    o.add_json_option(p)


def run(args: argparse.Namespace) -> int:
    import sys

    from ..latency import benchmark, format_table
    from ._options import emit, exported_weights

    if args.weights:
        source = args.weights
        if args.model and not exported_weights(args):
            from ..models import load_checkpoint

            source, _ = load_checkpoint(args.weights, arch=args.model)
    else:
        from ..models import create_model

        name = args.model or "litepose-xs"
        source = create_model(name)
        print(f"warning: {name} has random weights (time a trained model's decoding with --weights W)", file=sys.stderr)
    image = None
    if args.image:
        from ..media import read_image

        image = read_image(args.image, frame="upright")
    kw = {
        "detection_threshold": args.threshold, "tag_threshold": args.tag_threshold, "scales": args.scales,
        "legacy": args.legacy, "max_people": args.max_people, "keypoints": args.keypoints, "chain": args.chain,
        "device": args.device,
    }  # fmt: skip
    rows = benchmark(
        source, backends=[args.backend] if args.backend not in (None, "auto") else None, image=image,
        flips=(False,) if args.no_flip else (True, False), runs=args.runs, warmup=args.warmup,
        threads=args.threads, input_size=args.input_size, int8_images=args.int8_images, precision=args.precision, **kw,
    )  # fmt: skip
    emit(args, {"rows": rows}, format_table(rows))
    return 0
