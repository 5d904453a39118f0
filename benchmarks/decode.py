"""Speed of the grouping decoder: the shared reference cases (against the original's recorded
times on this machine kind) and a 5-person 17x256x384 frame with flip-test tags (L=2).

Usage: python benchmarks/decode.py [--runs R] [--shared DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import numpy as np
import torch
from _timing import timed

from litepose.decode import group
from litepose.testing import synthetic_maps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=30)
    default_shared = Path(os.environ.get("LITEPOSE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--shared", type=Path, default=default_shared, help="the shared reference data folder")
    args = ap.parse_args()
    torch.set_num_threads(1)

    ref_dir = args.shared / "ref"
    meta_path = ref_dir / "decode_cases.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        print(f"{'case':<30} {'people':>6} {'ours ms':>8} {'original ms':>12} {'speedup':>8}   (medians; min-vs-min)")
        med, mins = [], []
        ref = {c["name"]: c for c in meta["cases"]}
        for f in meta["files"]:
            for c in torch.load(ref_dir / f, weights_only=True)["cases"]:
                det, tag = c["det"].numpy(), c["tag"].numpy()
                m, lo = timed(lambda det=det, tag=tag: group(det, tag), args.runs)
                r = ref[c["name"]]
                med.append(r["parse_time_ms_median"] / m)
                mins.append(r["parse_time_ms_min"] / lo)
                n = c["grouped"].shape[0]
                print(
                    f"{c['name']:<30} {n:>6} {m:>8.3f} {r['parse_time_ms_median']:>12.2f} {med[-1]:>7.1f}x"
                    f"   ({mins[-1]:.1f}x)"
                )
        print(f"median speedup over {len(med)} cases: {statistics.median(med):.1f}x", end=" ")
        print(f"(min-vs-min {statistics.median(mins):.1f}x)")
    else:
        print(f"{meta_path} not found: reference cases skipped")

    e2e = ref_dir / "e2e_XS_17.json"
    if e2e.exists() and (ref_dir / "model_XS_17.pth").exists():
        import litepose
        from litepose.media import read_image

        model, _ = litepose.load_checkpoint(ref_dir / "model_XS_17.pth")
        runs = json.loads(e2e.read_text())["images"]["img_480x640.png"]["runs"]
        hm, tags, _ = litepose.Predictor(model).maps(read_image(ref_dir / "images/img_480x640.png", frame="stored"))
        for thr, legacy in ((1.0, False), (0.1, False), (0.1, True)):
            n = max(3, args.runs // 3) if not legacy else 3
            kpts, _ = group(hm, tags, detection_threshold=thr, legacy=legacy)
            m, _lo = timed(lambda thr=thr, legacy=legacy: group(hm, tags, detection_threshold=thr, legacy=legacy), n)
            orig = runs[str(thr)]["parse_time_ms"]
            print(
                f"e2e frame (random XS, 640x480, maps 17x{hm.shape[1]}x{hm.shape[2]}), threshold {thr}"
                f"{' legacy' if legacy else ''}: {m:.1f} ms, {len(kpts)} people; the original's parse "
                f"{orig:.0f} ms ({orig / m:.0f}x)"
            )

    maps = synthetic_maps(5, 256, 384, tag_dims=2, missing_per_person=2, person_height=(60, 120), seed=0)
    planar = np.moveaxis(np.ascontiguousarray(np.moveaxis(maps.tags, 3, 1)), 1, 3)
    for what, tags in (("tags (K,H,W,L) contiguous", maps.tags), ("tags planar-backed (as Predictor)", planar)):
        kpts, _ = group(maps.heatmaps, tags)
        m, lo = timed(lambda tags=tags: group(maps.heatmaps, tags), args.runs)
        print(
            f"5 people, 17x256x384, L=2, 2 joints missing each, {what}: {m:.2f} ms median, {lo:.2f} ms min "
            f"({len(kpts)} people decoded)"
        )


if __name__ == "__main__":
    main()
