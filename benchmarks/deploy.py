"""The deployment table: every backend side by side (eager torch, folded torch, ONNX Runtime and
OpenVINO in fp32 and int8), XS/S/M/L, flip and no flip, one 640x480 frame, per-stage medians.

Usage: python benchmarks/deploy.py [--models xs,s,m,l] [--runs R] [--threads N] [--chain C]
       [--threshold T] [--int8-images N] [--json OUT]

XS uses ../shared/ref/model_XS_17.pth (random weights, 24 people at threshold 1.0, the figure the
issue measured); S, M and L have random weights at their preset input sizes (448, 448, 512), so
their decode column is only indicative. Take the exclusive CPU lock per model (each run < 5 min):
    for m in xs s m l; do flock /tmp/litepose-cpu.lock python benchmarks/deploy.py --models $m; done
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import litepose
from litepose.latency import benchmark, format_table
from litepose.media import read_image

SIZES = {"xs": 256, "s": 448, "m": 448, "l": 512}


def main() -> None:
    shared = Path(os.environ.get("LITEPOSE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="xs,s,m,l")
    ap.add_argument("--image", default=str(shared / "ref/images/img_480x640.png"))
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chain", default="fast", choices=("fast", "original"))
    ap.add_argument("--threshold", type=float, default=1.0)
    ap.add_argument("--int8-images", type=int, default=8, help="generated images to calibrate int8 on")
    ap.add_argument("--json", default=None, help="also write the rows here")
    args = ap.parse_args()
    image = read_image(args.image, frame="upright")
    rows = []
    for name in args.models.split(","):
        xs_file = shared / "ref/model_XS_17.pth"
        model = (
            litepose.load_checkpoint(xs_file)[0] if name == "xs" and xs_file.exists()
            else litepose.create_model(f"litepose-{name}")
        )  # fmt: skip
        rows += benchmark(
            model, image=image, runs=args.runs, threads=args.threads, input_size=SIZES[name], chain=args.chain,
            detection_threshold=args.threshold, int8_images=args.int8_images,
        )  # fmt: skip
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=1))


if __name__ == "__main__":
    main()
