"""Per-stage latency of Predictor on one 640x480 frame (LitePose-XS, flip test by default).

Usage: python benchmarks/predict.py [--weights W] [--image PATH] [--runs R] [--threads N]
       [--no-flip] [--threshold T]
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import numpy as np
import torch

import litepose
from litepose.media import read_image


def main() -> None:
    shared = Path(os.environ.get("LITEPOSE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--weights", default=str(shared / "ref/model_XS_17.pth"))
    ap.add_argument("--image", default=str(shared / "ref/images/img_480x640.png"))
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-flip", action="store_true")
    ap.add_argument("--threshold", type=float, default=0.1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    if Path(args.weights).exists():
        model, _ = litepose.load_checkpoint(args.weights)
        source = args.weights
    else:
        model, source = litepose.create_model("litepose-xs"), "random litepose-xs"
    if Path(args.image).exists():
        image = read_image(args.image, frame="upright")
    else:
        image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    predictor = litepose.Predictor(model, flip_test=not args.no_flip, detection_threshold=args.threshold)
    predictor(image)  # warm-up
    stages: dict[str, list[float]] = {"preprocess": [], "network": [], "decode": []}
    for _ in range(args.runs):
        people = predictor(image)
        for k in stages:
            stages[k].append(predictor.timings.last[k])
    med = {k: statistics.median(v) for k, v in stages.items()}
    print(
        f"{source}, image {image.shape[1]}x{image.shape[0]}, flip test {not args.no_flip}, "
        f"threshold {args.threshold}, {args.threads} thread(s), {len(people)} people"
    )
    print(
        f"median of {args.runs}: preprocess {med['preprocess']:.1f} ms, network {med['network']:.1f} ms, "
        f"decode {med['decode']:.1f} ms, total {sum(med.values()):.1f} ms"
    )


if __name__ == "__main__":
    main()
