"""Cost of tracking and smoothing per frame: 10 people moving at constant speed (COCO-17 poses,
2 px joint noise, 10% of joints missing), through :class:`litepose.Tracker` without and with
One-Euro smoothing. The goal (issue 15) is at most 1 ms per frame for 10 people together.

Usage: python benchmarks/track.py [--frames N] [--people P] [--runs R]
"""

from __future__ import annotations

import argparse

import numpy as np
from _timing import timed

from litepose.data.keypoints import COCO
from litepose.track import Tracker


def walkers(frames: int, people: int, seed: int = 0) -> list[list[dict]]:
    """``frames`` frames of ``people`` poses moving at constant speed with joint noise and dropped joints."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 60, (people, COCO.num_joints, 2)) + rng.uniform(0, 1200, (people, 1, 2))
    speed = rng.uniform(-4, 4, (people, 1, 2))
    out = []
    for f in range(frames):
        xy = base + speed * f + rng.normal(0, 2.0, base.shape)
        score = (rng.random((people, COCO.num_joints)) > 0.1).astype(np.float64)
        out.append([{"keypoints": np.column_stack([xy[p], score[p]]), "score": 1.0} for p in range(people)])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--people", type=int, default=10)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    seq = walkers(args.frames, args.people)
    print(f"{args.people} people, {args.frames} frames; ms per frame (median of {args.runs} runs, min)")
    for smooth in (False, True):
        tracker = Tracker(COCO, smooth=smooth)

        def run(tracker: Tracker = tracker) -> None:
            tracker.reset()
            for people in seq:
                tracker.update(people)

        med, lo = timed(run, args.runs)
        ids = {p["track_id"] for p in tracker.update(seq[-1])}
        label = "tracking + smoothing" if smooth else "tracking"
        print(f"{label:<22} {med / args.frames:.3f} ms/frame (min {lo / args.frames:.3f}); ids at the end: {len(ids)}")


if __name__ == "__main__":
    main()
