"""Training data pipeline throughput: images/s of one worker (one core), every augmentation on.

Each sample = JPEG decode + ignore mask + random affine/flip (OpenCV) of image and mask +
heatmaps, masks and joint tables at 1/4 and 1/2 resolution + normalisation, exactly what
``KeypointDataset.__getitem__`` does for the trainer. Default data: the minicoco train images.

Usage: python benchmarks/data.py [--data JSON] [--sizes 256 448] [--epochs 20] [--workers N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from litepose.data.dataset import KeypointDataset
from litepose.data.transforms import TransformConfig

DEFAULT = (
    Path(__file__).resolve().parents[2] / "shared/data/coco_minicoco_sample/annotations/person_keypoints_train2017.json"
)


def stages(ds: KeypointDataset, size: int, epochs: int) -> dict[str, float]:
    """Milliseconds per image spent in each stage (decode, mask, transform + targets)."""
    t = {"decode": 0.0, "mask + joints": 0.0, "augment + targets": 0.0}
    rng = np.random.default_rng(0)
    ann = ds.annotations
    for _ in range(epochs):
        for iid in ds.image_ids:
            t0 = time.perf_counter()
            img = ann.read_image(iid)
            t1 = time.perf_counter()
            mask, joints = ann.mask(iid), ann.joints(iid)
            t2 = time.perf_counter()
            ds.transform(img, mask, joints, rng, input_size=size)
            t3 = time.perf_counter()
            t["decode"] += t1 - t0
            t["mask + joints"] += t2 - t1
            t["augment + targets"] += t3 - t2
    n = epochs * len(ds)
    return {k: v / n * 1e3 for k, v in t.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=str(DEFAULT), help="COCO-format keypoint JSON")
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 448])
    ap.add_argument("--epochs", type=int, default=20, help="passes over the images per size")
    ap.add_argument("--workers", type=int, default=0, help="also time a DataLoader with this many workers")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    ds = KeypointDataset(args.data, transform=TransformConfig())
    sizes = [cv2.imread(str(ds.annotations.image_path(i))).shape[:2] for i in ds.image_ids]
    print(f"{len(ds)} images ({np.mean([h * w for h, w in sizes]) / 1e3:.0f} kpx mean), K={ds.num_joints},")
    print("rotation +-30, scale 0.75..1.5, translation, flip 0.5, sigma 2, 30 people, outputs 1/4 + 1/2")
    print(f"one worker = 1 thread; {args.epochs} timed passes over the images per size (median, best)")
    for size in args.sizes:
        ds[(0, size)]  # warm-up
        rates = []
        for _ in range(args.epochs):
            t0 = time.perf_counter()
            for i in range(len(ds)):
                ds[(i, size)]
            rates.append(len(ds) / (time.perf_counter() - t0))
        best, median = max(rates), statistics.median(rates)
        parts = stages(ds, size, max(2, args.epochs // 4))
        detail = ", ".join(f"{k} {v:.2f} ms" for k, v in parts.items())
        print(f"input {size}: {median:6.1f} images/s per worker (median pass; best {best:.1f}; {detail})")
        if args.workers:
            loader = torch.utils.data.DataLoader(
                ds, batch_size=16, num_workers=args.workers, sampler=[(i % len(ds), size) for i in range(320)]
            )
            t0 = time.perf_counter()
            for _ in loader:
                pass
            rate = 320 / (time.perf_counter() - t0)
            print(f"           DataLoader, {args.workers} workers, batch 16: {rate:6.1f} images/s")


if __name__ == "__main__":
    main()
