"""SynthPose throughput on one core: rendering alone, and rendering + JPEG files (``make_synthpose``).

Usage: python benchmarks/synth.py [--images N] [--size WxH ...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import cv2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--size", nargs="*", default=["320x256", "384x288", "512x512"])
    args = ap.parse_args()
    cv2.setNumThreads(1)  # one core: OpenCV would otherwise parallelise resizes and JPEG encoding
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    from litepose.data.synth import make_synthpose, render_image

    print(f"SynthPose, one core, {args.images} images per size")
    print(f"{'size':>9} {'render img/s':>13} {'render+jpeg img/s':>18} {'people/img':>11}")
    for size in args.size:
        for i in range(10):  # warm-up (imports, caches)
            render_image(1, i, size)
        t0 = time.perf_counter()
        people = 0
        for i in range(args.images):
            people += sum(1 for a in render_image(0, i, size).annotations if not a["iscrowd"])
        render = args.images / (time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            make_synthpose(tmp, args.images, seed=0, size=size, progress=False)
            files = args.images / (time.perf_counter() - t0)
        print(f"{size:>9} {render:>13.0f} {files:>18.0f} {people / args.images:>11.2f}")


if __name__ == "__main__":
    main()
