"""Evaluator speed and agreement: hotcoco (litepose's COCO evaluator) vs pycocotools.

Ground truth: N SynthPose images (annotations only); predictions: the ground truth with
per-joint jitter, dropped people and false positives. Prints seconds per full evaluation and
the largest difference of the 10 COCO stats and of the precision array.

Usage: python benchmarks/eval.py [--images N]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import time

import numpy as np


def dataset(n: int) -> dict:
    from litepose.data.synth import coco_category, render_image

    images, anns = [], []
    for i in range(n):
        frame = render_image(0, i)
        images.append({"id": i + 1, "file_name": f"{i:06d}.jpg", "width": 320, "height": 256})
        for a in frame.annotations:
            anns.append(dict(a, id=len(anns) + 1, image_id=i + 1))
    return {"images": images, "annotations": anns, "categories": [coco_category()]}


def predictions(gt: dict, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for a in gt["annotations"]:
        if a["iscrowd"] or a["num_keypoints"] == 0 or rng.random() < 0.1:
            continue
        k = np.asarray(a["keypoints"], float).reshape(-1, 3)
        s = max(4.0, np.sqrt(a["bbox"][2] * a["bbox"][3]))
        for fp in (False, True) if rng.random() < 0.3 else (False,):
            j = k.copy()
            j[:, :2] += rng.normal(0, (0.5 if fp else 0.04) * s, (1 if fp else len(j), 2))
            j[:, 2] = 1
            out.append({"image_id": a["image_id"], "category_id": 1, "keypoints": j.ravel().tolist(),
                        "score": float(rng.uniform(0.05, 1))})  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from importlib.metadata import version

    import hotcoco
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from litepose.data.coco import KeypointAnnotations
    from litepose.eval import METRIC_KEYS, evaluate

    gt = dataset(args.images)
    res = predictions(gt)
    print(f"{args.images} SynthPose images, {len(gt['annotations'])} annotations, {len(res)} predictions")
    print(f"best of {args.repeat} runs, inputs already in memory")

    def run_pycocotools():
        g, r = copy.deepcopy(gt), copy.deepcopy(res)
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO()
            coco.dataset = g
            coco.createIndex()
            ev = COCOeval(coco, coco.loadRes(r), "keypoints")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        return time.perf_counter() - t0, ev

    def run_hotcoco():
        g, r = copy.deepcopy(gt), copy.deepcopy(res)
        t0 = time.perf_counter()
        hc = hotcoco.COCO(g)
        ev = hotcoco.COCOeval(hc, hc.load_res(r), "keypoints")
        with contextlib.redirect_stdout(io.StringIO()):
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        return time.perf_counter() - t0, ev

    def run_litepose():
        ann = KeypointAnnotations(copy.deepcopy(gt), "synthpose.json")
        t0 = time.perf_counter()
        m = evaluate(res, ann)
        return time.perf_counter() - t0, m

    t_py, ev = min((run_pycocotools() for _ in range(args.repeat)), key=lambda x: x[0])
    t_hot, hev = min((run_hotcoco() for _ in range(args.repeat)), key=lambda x: x[0])
    t_lp, m = min((run_litepose() for _ in range(args.repeat)), key=lambda x: x[0])
    d_stats = np.abs(np.asarray(ev.stats) - np.asarray(hev.stats)).max()
    d_prec = np.abs(np.asarray(ev.eval["precision"]) - np.asarray(hev.eval["precision"])).max()
    d_lp = np.abs(np.asarray([m[k] for k in METRIC_KEYS["coco"]]) - ev.stats).max()
    print(f"pycocotools {version('pycocotools')}: {t_py:.3f} s")
    print(f"hotcoco {version('hotcoco')}: {t_hot:.3f} s ({t_py / t_hot:.0f}x faster)")
    print(f"litepose.evaluate (validation + hotcoco): {t_lp:.3f} s ({t_py / t_lp:.0f}x faster)")
    print(f"AP {ev.stats[0]:.4f}; max |stats diff| hotcoco {d_stats:.1e}, litepose {d_lp:.1e};"
          f" max |precision diff| {d_prec:.1e}")  # fmt: skip

    # The CrowdPose protocol (xthotcoco: overall + three crowd bands = four evaluations).
    rng = np.random.default_rng(0)
    crowd = copy.deepcopy(gt)
    for im in crowd["images"]:
        im["crowdIndex"] = float(rng.uniform(0, 1))
    ann = KeypointAnnotations(crowd, "synthpose-crowd.json")
    t0 = time.perf_counter()
    m = evaluate(res, ann, "crowdpose")
    bands = "/".join(f"{m[k]:.4f}" for k in ("AP_easy", "AP_medium", "AP_hard"))
    print(f"litepose.evaluate, crowdpose protocol: {time.perf_counter() - t0:.3f} s (AP {m['AP']:.4f}, bands {bands})")


if __name__ == "__main__":
    main()
