"""Keypoint evaluation: COCO keypoint AP/AR and the CrowdPose protocol.

``evaluate(results_or_predictor, data, protocol=None)`` scores multi-person keypoint results
against a COCO-format ground truth. Results are COCO result dicts (``image_id``,
``category_id``, ``keypoints`` = 3K numbers, ``score``), a results JSON, or a Predictor-like
callable (``predictor(rgb_uint8) -> [{"keypoints": (K, 3), "score": s, ...}, ...]``) that is
run on every image of the dataset.

Evaluators (see docs/evaluation.md for the measurements behind the choice):

- ``coco``: ``hotcoco`` (Rust), whose precision/recall arrays and stats equal pycocotools'
  bit for bit and which is ~30x faster on 2,000 images, which matters when many models (e.g.
  subnets of a supernet) are scored. ``tests/test_eval.py`` checks it against
  pycocotools called directly.
- ``crowdpose``: ``xthotcoco`` (xtcocotools' CrowdPose protocol on hotcoco): OKS scale from
  the box (``0.53 * w * h``, as the CrowdPose toolkit), at most 20 people per image, AP / AR at
  0.50:0.95, 0.50, 0.75, and AP over easy / medium / hard images by ``crowdIndex`` with the
  toolkit's thresholds 0.2 and 0.8.

Files without ``area`` (CrowdPose, PoseTrack, ExLPose) work under both protocols: a missing
area is taken as ``0.53 * bbox_w * bbox_h``, the CrowdPose toolkit's definition.
"""

from __future__ import annotations

import contextlib
import io
import numbers
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.coco import KeypointAnnotations, load_annotations
from ..data.jsonio import read_json, write_json
from ..media import check_images

__all__ = [
    "evaluate",
    "gt_as_results",
    "load_results",
    "load_eval_data",
    "default_protocol",
    "format_metrics",
    "PROTOCOLS",
    "METRIC_KEYS",
    "CROWD_INDEX_THRESHOLDS",
]

PROTOCOLS = ("coco", "crowdpose")
METRIC_KEYS = {
    "coco": ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"),
    "crowdpose": ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard"),
}
# The CrowdPose toolkit's summarize() splits images at crowdIndex 0.2 and 0.8 (easy < 0.2 <=
# medium < 0.8 <= hard). The paper's text says 0.1; published numbers come from the toolkit.
CROWD_INDEX_THRESHOLDS = (0.2, 0.8)
# The CrowdPose toolkit's area for OKS when a file has none: 0.53 of the box.
BOX_AREA_FACTOR = 0.53

Predictor = Callable[[np.ndarray], Sequence[dict[str, Any]]]


def load_eval_data(data: str | Path | KeypointAnnotations, images: str | Path | None = None) -> KeypointAnnotations:
    """Ground truth from a COCO-format JSON, a SynthPose folder (``annotations.json`` + ``images/``)
    or an already loaded :class:`~litepose.data.coco.KeypointAnnotations`."""
    if isinstance(data, KeypointAnnotations):
        return data
    return load_annotations(data, images)


def default_protocol(ann: KeypointAnnotations) -> str:
    """``crowdpose`` for 14 joints, ``coco`` otherwise."""
    return "crowdpose" if ann.num_joints == 14 else "coco"


def gt_as_results(data: str | Path | KeypointAnnotations, images: str | Path | None = None) -> list[dict[str, Any]]:
    """The ground truth as results (a self-check: must score AP 1.0).

    Non-crowd annotations with ``num_keypoints > 0``, score 1.
    """
    ann = load_eval_data(data, images)
    out = []
    for a in ann.dataset["annotations"]:
        if a["category_id"] != ann.category_id or a["iscrowd"] or a["num_keypoints"] <= 0:
            continue
        out.append(
            {
                "image_id": a["image_id"],
                "category_id": a["category_id"],
                "keypoints": [float(v) for v in a["keypoints"]],
                "score": 1.0,
            }
        )
    return out


def load_results(path: str | Path) -> list[dict[str, Any]]:
    """Read a COCO results JSON (a list of result dicts)."""
    path = Path(path)
    results = read_json(path, "results file")
    if not isinstance(results, list):
        raise ValueError(f"{path}: expected a list of COCO result dicts, got {type(results).__name__}")
    return results


def evaluate(
    results_or_predictor: Sequence[dict[str, Any]] | str | Path | Predictor,
    data: str | Path | KeypointAnnotations,
    protocol: str | None = None,
    *,
    images: str | Path | None = None,
    output: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score keypoint results against COCO-format ground truth.

    Args:
        results_or_predictor: COCO result dicts, a results JSON path, or a Predictor-like callable
            (run on every image of ``data``; images read with OpenCV, given as RGB uint8).
        data: a COCO-format keypoint JSON (images relative to its folder unless ``images``), a
            SynthPose folder, or loaded ``KeypointAnnotations``.
        protocol: ``"coco"`` or ``"crowdpose"``; default from the number of joints (14: crowdpose).
        images: image folder, when ``file_name`` entries are not relative to the JSON's folder.
        output: folder for ``results.json`` (when a predictor ran) and ``metrics.json``.
        progress: show a progress bar while a predictor runs.

    Returns:
        ``{"protocol", metric keys (METRIC_KEYS[protocol], -1 where undefined), "num_images",
        "num_results", "evaluator"}``.
    """
    ann = load_eval_data(data, images)
    protocol = (protocol or default_protocol(ann)).lower()
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")

    ran = False
    if isinstance(results_or_predictor, str | Path):
        where = str(results_or_predictor)
        raw = load_results(results_or_predictor)
    elif callable(results_or_predictor):
        from ..interrupt import Stopped, stop_signal

        where = "predictions"
        check_images([ann.image_path(i) for i in ann.image_ids], f"images of {ann.path}")  # before any inference
        done: list[dict[str, Any]] = []
        try:
            raw = run_predictor(results_or_predictor, ann, progress=progress, into=done, stoppable=True)
        except BaseException:  # an image that fails to decode, an error, a second signal: keep what was done
            _keep_partial(output, done)
            raise
        if raw is None:  # a signal asked to stop between images
            _keep_partial(output, done)
            raise Stopped(stop_signal())
        ran = True
    else:
        where = "results"
        raw = list(results_or_predictor)
    results = _check_results(raw, ann, where)

    gt, matched = _evaluator_inputs(ann, results)
    sigmas = [float(s) for s in ann.keypoints.sigmas]
    if protocol == "coco":
        stats, evaluator = _coco_stats(gt, matched, sigmas)
    else:
        stats, evaluator = _crowdpose_stats(gt, matched, sigmas)
    metrics: dict[str, Any] = {"protocol": protocol}
    metrics.update({k: float(v) for k, v in zip(METRIC_KEYS[protocol], stats)})
    metrics.update(
        {
            "num_images": len(ann.image_ids),
            "num_results": len(results),
            "keypoints": ann.keypoints.name,
            "data": str(ann.path),
            "evaluator": evaluator,
        }
    )
    if output is not None:
        out = Path(output)
        if ran:
            write_json(out / "results.json", results)
        write_json(out / "metrics.json", metrics, indent=1)
    return metrics


def _keep_partial(output: str | Path | None, done: list[dict[str, Any]]) -> None:
    """A val run stopped before its end: with an output folder, write the results of the images
    done so far (``results.json``, no metrics: they would describe part of the set) and say so."""
    import sys

    if output is None:
        return
    from ..files import shown

    path = write_json(Path(output) / "results.json", done)
    print(f"kept the results so far ({len(done)} people) in {shown(path)}; no metrics were computed", file=sys.stderr)


def run_predictor(
    predictor: Predictor,
    ann: KeypointAnnotations,
    *,
    progress: bool = True,
    image_ids: Sequence[Any] | None = None,
    into: list[dict[str, Any]] | None = None,
    stoppable: bool = False,
) -> list[dict[str, Any]] | None:
    """Run ``predictor`` on every image of ``ann`` (or on ``image_ids`` of it) and return COCO result dicts.

    ``image_ids`` lets several processes predict disjoint shares of a val set (DDP validation).
    ``into``: the list the results are appended to as they come (what was done survives an error).
    ``stoppable``: under the command line's stop policy (:mod:`litepose.interrupt`) a signal finishes
    the current image and returns None (the results so far are in ``into``); otherwise a signal
    is left to the caller's policy.
    """
    from tqdm import tqdm

    from ..interrupt import graceful, stop_requested

    results = [] if into is None else into
    ids = ann.image_ids if image_ids is None else image_ids
    with graceful() if stoppable else contextlib.nullcontext():
        for image_id in tqdm(ids, desc="predict", unit="img", disable=not progress):
            if stoppable and stop_requested():
                return None
            _predict_one(predictor, ann, image_id, results)
    return results


def _predict_one(predictor: Predictor, ann: KeypointAnnotations, image_id: Any, results: list[dict[str, Any]]) -> None:
    """Append the results of one image to ``results`` (all of them, or none when the image fails)."""
    found = []
    for person in predictor(ann.read_image(image_id)):
        kp = np.asarray(person["keypoints"], dtype=np.float64)
        if kp.ndim != 2 or kp.shape[0] != ann.num_joints or kp.shape[1] < 2:
            raise ValueError(
                f"the predictor returned keypoints of shape {tuple(kp.shape)};"
                f" {ann.path} has {ann.num_joints} joints"
            )
        if kp.shape[1] == 2:
            kp = np.concatenate([kp, np.ones((len(kp), 1))], axis=1)
        found.append(
            {
                "image_id": image_id,
                "category_id": ann.category_id,
                "keypoints": [round(float(v), 3) for v in kp[:, :3].ravel()],
                "score": float(person["score"]),
            }
        )
    results.extend(found)


def _check_results(raw: list[Any], ann: KeypointAnnotations, where: str) -> list[dict[str, Any]]:
    """Validate result dicts and return clean copies: an image of the ground truth (and, where the
    result names its ``file_name``, as ``litepose predict`` writes, that image's file), the stored
    pixel frame, 3K finite numbers and a finite score (numbers, not numeric strings)."""
    k3 = 3 * ann.num_joints
    known = set(ann.image_ids)
    names = {im["id"]: Path(str(im["file_name"])).name for im in ann.dataset["images"]}
    out = []
    for n, r in enumerate(raw):
        if not isinstance(r, dict):
            raise ValueError(f"{where}: result #{n} is not an object")
        for key in ("image_id", "keypoints", "score"):
            if key not in r:
                raise ValueError(f"{where}: result #{n} has no '{key}'")
        iid = r["image_id"]
        if isinstance(iid, bool) or not isinstance(iid, numbers.Integral | str):
            raise ValueError(f"{where}: result #{n} has an invalid image_id {iid!r} (an integer or a string expected)")
        if iid not in known:
            raise ValueError(f"{where}: result #{n} is for image {iid!r}, which is not in {ann.path}")
        _check_provenance(r, n, names, ann.path, where)
        cat = r.get("category_id", ann.category_id)
        if cat != ann.category_id:
            raise ValueError(f"{where}: result #{n} has category_id {cat!r}; {ann.path} has {ann.category_id!r}")
        kp = r["keypoints"]
        if not isinstance(kp, list):
            kp = np.asarray(kp).ravel().tolist() if not isinstance(kp, str | dict) else [kp]
        if len(kp) != k3:
            raise ValueError(f"{where}: result #{n} has {len(kp)} keypoint values, expected {k3}")
        out.append({"image_id": iid, "category_id": cat, "keypoints": kp, "score": r["score"]})
    if not out:
        return out
    # One vectorised check instead of one per result (results can number in the hundreds of thousands).
    kps = _numbers([r["keypoints"] for r in out], "keypoints", where)
    scores = _numbers([r["score"] for r in out], "score", where)
    bad = ~(np.isfinite(kps).all(1) & np.isfinite(scores))
    if bad.any():
        raise ValueError(f"{where}: result #{int(np.flatnonzero(bad)[0])} has NaN or infinite values")
    for r, score in zip(out, scores.tolist()):
        r["score"] = score
    return out


def _numbers(values: list[Any], what: str, where: str) -> np.ndarray:
    """``values`` (one entry per result) as a float64 array; a non-number (a numeric string, None,
    a list where a number belongs) is an error naming the first result that holds one."""
    try:
        arr = np.array(values)
    except (TypeError, ValueError):
        arr = np.array([None])
    if arr.dtype.kind in "iuf" and arr.ndim == (2 if what == "keypoints" else 1):
        return arr.astype(np.float64)
    for n, v in enumerate(values):
        items = v if what == "keypoints" else [v]
        if not all(isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool) for x in items):
            raise ValueError(f"{where}: result #{n} has a non-numeric {what} (numbers expected, not strings)")
    raise ValueError(f"{where}: the results' {what} are not numbers of one shape")


def _check_provenance(r: dict[str, Any], n: int, names: dict[Any, str], gt: Path, where: str) -> None:
    """What ``litepose predict`` records of a result's image must fit the ground truth: the file named
    is the one the image id stands for there (else the ids came from another numbering), and the
    coordinates are in the stored pixel frame of the annotations (not turned upright by EXIF)."""
    iid, name = r["image_id"], r.get("file_name")
    hint = f"litepose predict --ann {gt} writes results with its ids, in its frame"
    if name is not None:
        expected = names[iid]
        if Path(str(name)).name != expected:
            raise ValueError(
                f"{where}: result #{n} is for file {name!r} with image_id {iid!r}, but image {iid!r} of {gt} "
                f"is {expected!r}: the ids are not the annotations' ({hint})"
            )
    frame = r.get("frame", "stored")
    if frame != "stored":
        raise ValueError(
            f"{where}: result #{n} ({name or iid!r}) is in the {frame!r} pixel frame (its image was turned by its "
            f"EXIF orientation), but {gt} gives keypoints in the stored frame ({hint})"
        )


def _id_map(ids: list[Any]) -> dict[Any, int] | None:
    """None when every id is a non-negative int (used as is, so ties break as in pycocotools);
    otherwise (string ids, which the evaluators refuse) ids -> 1..N in sorted order."""
    if all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
        return None
    return {i: n for n, i in enumerate(sorted(ids, key=str), start=1)}


def _evaluator_inputs(
    ann: KeypointAnnotations, results: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A minimal, strictly typed copy of the ground truth for the evaluators, and the results to match.

    Only the keypoint category; missing ``area`` = 0.53 * box (CrowdPose toolkit); missing
    ``bbox`` from the segmentation or the labelled joints; ``crowdIndex`` kept; ids the
    evaluators cannot take (strings) renumbered in both.
    """
    image_map = _id_map(ann.image_ids)
    anns = [a for a in ann.dataset["annotations"] if a["category_id"] == ann.category_id]
    ann_map = _id_map([a["id"] for a in anns])
    cat = ann.category_id if _id_map([ann.category_id]) is None else 1
    images = []
    for im in ann.dataset["images"]:
        iid = im["id"] if image_map is None else image_map[im["id"]]
        e = {"id": iid, "file_name": str(im["file_name"]), "width": int(im["width"]), "height": int(im["height"])}
        if "crowdIndex" in im:
            e["crowdIndex"] = float(im["crowdIndex"])
        images.append(e)
    k = ann.num_joints
    annotations = []
    for a in anns:
        kps = a.get("keypoints") or [0] * (3 * k)  # validated numbers (ints are fine for the evaluators)
        bbox = a.get("bbox")
        if bbox is None:
            bbox = _bbox_of(a, kps, ann)
        area = a.get("area")
        if area is None:
            area = BOX_AREA_FACTOR * float(bbox[2]) * float(bbox[3])
        annotations.append(
            {
                "id": a["id"] if ann_map is None else ann_map[a["id"]],
                "image_id": a["image_id"] if image_map is None else image_map[a["image_id"]],
                "category_id": cat,
                "iscrowd": int(a["iscrowd"]),
                "keypoints": kps,
                "num_keypoints": a["num_keypoints"],
                "bbox": bbox,
                "area": area,
            }
        )
    category = {"id": cat, "name": "person", "supercategory": "person", "keypoints": list(ann.keypoints.names),
                "skeleton": []}  # fmt: skip
    if image_map is not None or cat != ann.category_id:
        results = [
            dict(r, image_id=r["image_id"] if image_map is None else image_map[r["image_id"]], category_id=cat)
            for r in results
        ]
    return {"images": images, "annotations": annotations, "categories": [category]}, results


def _bbox_of(a: dict[str, Any], kps: list[float], ann: KeypointAnnotations) -> list[float]:
    seg = a.get("segmentation")
    if seg:
        from pycocotools import mask as mask_utils

        info = ann.image_info(a["image_id"])
        h, w = info["height"], info["width"]
        if isinstance(seg, dict):
            rle = seg if isinstance(seg["counts"], str | bytes) else mask_utils.frPyObjects(seg, h, w)
        else:
            rle = mask_utils.merge(mask_utils.frPyObjects([p for p in seg if len(p) >= 6] or seg, h, w))
        return [float(v) for v in mask_utils.toBbox(rle)]
    j = np.asarray(kps).reshape(-1, 3)
    j = j[j[:, 2] > 0]
    if len(j) == 0:
        return [0.0, 0.0, 0.0, 0.0]
    x0, y0 = j[:, :2].min(0)
    x1, y1 = j[:, :2].max(0)
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


@contextlib.contextmanager
def _quiet():
    """Silence the evaluators' prints and their warning that custom sigmas redefine OKS."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*kpt_oks_sigmas.*")
        yield


def _coco_stats(gt: dict[str, Any], results: list[dict[str, Any]], sigmas: list[float]) -> tuple[list[float], str]:
    import hotcoco

    coco_gt = hotcoco.COCO(gt)
    coco_dt = coco_gt.load_res(results)
    ev = hotcoco.COCOeval(coco_gt, coco_dt, "keypoints")
    ev.params.kpt_oks_sigmas = sigmas
    with _quiet():
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(s) for s in ev.stats], f"hotcoco {hotcoco.__version__}"


def _crowdpose_stats(gt: dict[str, Any], results: list[dict[str, Any]], sigmas: list[float]) -> tuple[list[float], str]:
    import xthotcoco

    first, second = CROWD_INDEX_THRESHOLDS
    indices = [im.get("crowdIndex") for im in gt["images"]]
    has_index = all(ci is not None for ci in indices)
    bands_present = [
        any(ci < first for ci in indices) if has_index else False,
        any(first <= ci < second for ci in indices) if has_index else False,
        any(ci >= second for ci in indices) if has_index else False,
    ]
    if not has_index:  # xthotcoco needs a number on every image; those bands are not reported
        gt = dict(gt, images=[dict(im, crowdIndex=0.0) for im in gt["images"]])
    ev = xthotcoco.COCOeval(xthotcoco.COCO(ann_data=gt), results, "keypoints_crowd", sigmas, use_area=False)
    with _quiet():
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = [float(s) for s in ev.stats]
    # An empty band has no AP (the toolkit gives -1); hotcoco would read an empty image list as "all".
    for i, present in enumerate(bands_present):
        if not present:
            stats[6 + i] = -1.0
    return stats, f"xthotcoco {xthotcoco.__version__} (hotcoco)"


def format_metrics(metrics: dict[str, Any]) -> str:
    """A terminal table of the metrics returned by :func:`evaluate`."""
    protocol = metrics["protocol"]
    names = {
        "AP": "AP @[.50:.95]",
        "AP50": "AP @.50",
        "AP75": "AP @.75",
        "APm": "AP medium",
        "APl": "AP large",
        "AR": "AR @[.50:.95]",
        "AR50": "AR @.50",
        "AR75": "AR @.75",
        "ARm": "AR medium",
        "ARl": "AR large",
        "AP_easy": "AP easy",
        "AP_medium": "AP medium",
        "AP_hard": "AP hard",
    }
    lines = [
        f"{protocol} keypoint protocol: {metrics['num_images']} images, {metrics['num_results']} results"
        f" ({metrics['evaluator']})",
        f"{'metric':<10} {'':<14} {'value':>6}",
    ]
    for key in METRIC_KEYS[protocol]:
        v = metrics[key]
        value = f"{v:.3f}" if v >= 0 else "n/a"
        lines.append(f"{key:<10} {names[key]:<14} {value:>6}")
    if protocol == "crowdpose":
        a, b = CROWD_INDEX_THRESHOLDS
        lines.append(f"(crowdIndex bands: easy < {a}, medium {a}..{b}, hard >= {b}; n/a = no such image)")
    else:
        lines.append("(n/a = no ground truth in that area range)")
    return "\n".join(lines)
