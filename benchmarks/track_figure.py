"""The figure of docs/tracking.md: one joint of one SynthPose person over a clip, as the ground
truth, as ``val --perturb`` perturbs it (the tracker's raw output) and as One-Euro smoothed.

Usage: python benchmarks/track_figure.py [--output docs/tracking_smoothing.png] [--seed 4]
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np

from litepose.data.synth import make_synthpose
from litepose.eval import load_eval_data
from litepose.track import OneEuroConfig
from litepose.track import evaluate as te


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--output", default="docs/tracking_smoothing.png")
    ap.add_argument("--seed", type=int, default=4)
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with tempfile.TemporaryDirectory() as tmp:
        make_synthpose(tmp, 30, seed=args.seed, sequence=30, progress=False)
        ann = load_eval_data(tmp)
        clips = te.load_clips(ann)
    det = te.perturbed_detections(clips, 0)
    raw = te.track_clips(det, ann.keypoints)[0]
    smooth = te.track_clips(det, ann.keypoints, smoothing=OneEuroConfig())[0]
    clip = clips[0]
    joint = 9  # left wrist: the fastest-moving joint of a walk
    # the ground-truth person seen longest, and the track id nearest to it most often
    gid = max({int(i) for ids in clip.ids for i in ids}, key=lambda g: sum(g in ids for ids in clip.ids))

    def nearest(people, g):
        tracked = [p for p in people if p["track_id"] is not None]
        err = [np.abs(p["keypoints"][:, :2] - g[:, :2]).mean() for p in tracked]
        return tracked[int(np.argmin(err))]["track_id"] if tracked else None

    series = {"ground truth": [], "tracked (raw)": [], "tracked + One-Euro": []}
    for name, frames in (("tracked (raw)", raw), ("tracked + One-Euro", smooth)):
        votes = [nearest(frames[f], kps[ids == gid][0]) for f, (ids, kps) in enumerate(zip(clip.ids, clip.keypoints))
                 if (ids == gid).any()]  # fmt: skip
        tid = max(set(votes) - {None}, key=votes.count)
        for people in frames:
            kp = next((p["keypoints"] for p in people if p["track_id"] == tid), None)
            series[name].append(kp[joint, 0] if kp is not None and kp[joint, 2] > 0.1 else np.nan)
    for ids, kps in zip(clip.ids, clip.keypoints):
        g = kps[ids == gid]
        series["ground truth"].append(g[0, joint, 0] if len(g) and g[0, joint, 2] > 0 else np.nan)
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=110)
    for (name, ys), style in zip(series.items(), ("k-", "C3.-", "C0o-")):
        ax.plot(ys, style, label=name, lw=1.4, ms=3)
    ax.set_xlabel("frame")
    ax.set_ylabel("left wrist x (px)")
    ax.set_title("SynthPose clip, perturbed ground truth (val --track --perturb)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
