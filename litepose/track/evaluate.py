"""Tracking metrics on clips with ground-truth identities (``litepose val --track``).

MOTA, MOTP, IDF1 and identity switches come from motmetrics (the py-motmetrics package, pinned
1.4.0), not from code of litepose's own: litepose only computes the distance between each
ground-truth person and each hypothesis, ``1 - OKS`` (COCO's OKS: the keypoint set's sigmas, the
ground truth's area as ``s^2``, the mean over its labelled joints, a hypothesis joint at or under
the keypoint threshold counting 0), and pairs with OKS under ``oks_threshold`` (0.5) cannot match.
HOTA is not reported: the PyPI ``trackeval`` package is a third party's fork, not the upstream
TrackEval, and it requires ``opencv-python``, which clashes with ``opencv-python-headless``.

Two measures of smoothness, computed here because no peer library defines them for keypoints:

- jitter: the mean frame-to-frame acceleration of keypoints, ``|x[t+1] - 2 x[t] + x[t-1]|`` in
  px/frame^2, over every joint of every confirmed track seen in three consecutive frames;
- lag: per hypothesis track matched to a ground-truth person (the person motmetrics matched it
  to most often), the frame shift ``d`` in ``[-max_shift, max_shift]`` that minimises the mean
  joint distance between the track at ``t`` and the ground truth at ``t - d``; the median over
  tracks (positive: the track trails the ground truth).

A clip is a ``vid_id`` of a COCO-format file whose images carry ``vid_id`` and ``frame_id``
and whose people carry ``track_id`` (``litepose synth --sequence``; PoseTrack-style files).
People without labelled joints are not in the ground truth.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.keypoints import KeypointSet
from .oks import oks_matrix
from .smoothing import OneEuroConfig
from .tracker import Tracker, TrackerConfig

__all__ = [
    "Clip",
    "PERTURBATION",
    "load_clips",
    "gt_detections",
    "perturbed_detections",
    "track_clips",
    "tracking_metrics",
    "similarity_matrix",
    "evaluate_tracking",
    "format_tracking",
]

#: What ``predict_clips`` runs: an image in, people out (a :class:`~litepose.Predictor`).
Detector = Callable[[np.ndarray], Sequence[dict[str, Any]]]

#: ``--perturb``: what is done to the ground truth, per frame (seeded).
PERTURBATION = {
    "joint_noise": 0.05,  # Gaussian noise on x and y, sigma = this x sqrt(person area) px
    "joint_drop": 0.10,  # each labelled joint dropped (score 0) with this probability
    "person_miss": 0.05,  # each person left out with this probability
    "false_people": 0.2,  # Poisson mean of false people per frame: a pose of the clip, moved at random
}

#: Why no HOTA is reported (see the module docstring).
HOTA_NOTE = (
    "not reported: the PyPI trackeval package is a third-party fork of TrackEval (not the upstream code) "
    "and requires opencv-python, which clashes with opencv-python-headless"
)

#: The motmetrics summary fields reported.
MOT_FIELDS = (
    "mota", "motp", "idf1", "idp", "idr", "num_switches", "num_false_positives", "num_misses", "num_objects",
    "num_unique_objects", "mostly_tracked", "num_fragmentations",
)  # fmt: skip


@dataclass
class Clip:
    """One clip: its frames' image ids in order, and per frame the ground truth: ids (P,),
    keypoints (P, K, 3) with visibility, areas (P,)."""

    vid: Any
    image_ids: list[int]
    ids: list[np.ndarray]
    keypoints: list[np.ndarray]
    areas: list[np.ndarray]
    size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.image_ids)


def load_clips(ann: Any) -> list[Clip]:
    """The clips of a :class:`~litepose.data.coco.KeypointAnnotations` (see the module docstring);
    a file without ``vid_id`` / ``frame_id`` / ``track_id`` is a one-line ValueError."""
    data = ann.dataset
    k = ann.num_joints
    frames: dict[Any, list[tuple[int, int]]] = defaultdict(list)
    for im in data["images"]:
        if "vid_id" not in im or "frame_id" not in im:
            raise ValueError(
                f"{ann.path}: image {im.get('id')} has no vid_id / frame_id: --track needs video clips "
                "(e.g. litepose synth --sequence FRAMES)"
            )
        frames[im["vid_id"]].append((int(im["frame_id"]), im["id"]))
    people = ann._by_image
    clips = []
    for vid, fr in frames.items():
        fr.sort()
        ids, kps, areas = [], [], []
        for _, image_id in fr:
            rows = [a for a in people[image_id] if not a.get("iscrowd") and a.get("num_keypoints", 0) > 0]
            missing = [a.get("id") for a in rows if a.get("track_id") is None]
            if missing:
                raise ValueError(f"{ann.path}: annotation {missing[0]} (image {image_id}) has no track_id")
            ids.append(np.array([a["track_id"] for a in rows], np.int64))
            kps.append(np.array([a["keypoints"] for a in rows], np.float64).reshape(-1, k, 3))
            areas.append(np.array([float(a.get("area") or 0.0) for a in rows], np.float64))
        info = ann.image_info(fr[0][1])
        clips.append(Clip(vid, [i for _, i in fr], ids, kps, areas, (int(info["width"]), int(info["height"]))))
    return clips


def _person(kp: np.ndarray, score: float = 1.0) -> dict[str, Any]:
    return {"keypoints": kp, "score": score}


def gt_detections(clips: Sequence[Clip]) -> list[list[list[dict[str, Any]]]]:
    """The ground truth as detections: joint score 1 where labelled, 0 elsewhere; no identities."""
    out = []
    for clip in clips:
        frames = []
        for kps in clip.keypoints:
            people = []
            for kp in kps:
                d = kp.copy()
                d[:, 2] = (kp[:, 2] > 0).astype(np.float64)
                people.append(_person(d))
            frames.append(people)
        out.append(frames)
    return out


def perturbed_detections(clips: Sequence[Clip], seed: int = 0) -> list[list[list[dict[str, Any]]]]:
    """The ground truth with :data:`PERTURBATION` applied to every frame; clip ``i`` uses the random
    stream ``(seed, i)``, so the same seed gives the same detections."""
    p = PERTURBATION
    out = []
    for ci, clip in enumerate(clips):
        rng = np.random.default_rng([int(seed), ci, 15])
        pool = [kp for kps in clip.keypoints for kp in kps]
        pool_areas = [a for areas in clip.areas for a in areas]
        frames = []
        for kps, areas in zip(clip.keypoints, clip.areas):
            people = []
            sources = [(kp, a, False) for kp, a in zip(kps, areas)]
            for _ in range(int(rng.poisson(p["false_people"])) if pool else 0):
                j = int(rng.integers(len(pool)))
                sources.append((pool[j], pool_areas[j], True))
            for kp, area, false in sources:
                if not false and rng.random() < p["person_miss"]:
                    continue
                d = kp.copy()
                labelled = kp[:, 2] > 0
                if false:  # the pose moved so that its box centre falls anywhere in the image
                    box = d[labelled, :2]
                    centre = (box.min(0) + box.max(0)) / 2
                    d[:, :2] += rng.uniform((0, 0), clip.size) - centre
                d[:, :2] += rng.normal(0.0, p["joint_noise"] * math.sqrt(max(area, 1.0)), (len(d), 2))
                keep = labelled & (rng.random(len(d)) >= p["joint_drop"])
                d[:, 2] = keep.astype(np.float64)
                d[~keep, :2] = 0.0
                people.append(_person(d))
            order = rng.permutation(len(people))  # the input order tells nothing
            frames.append([people[i] for i in order])
        out.append(frames)
    return out


def track_clips(
    detections: Sequence[Sequence[Sequence[Any]]],
    keypoints: KeypointSet,
    config: TrackerConfig | None = None,
    smoothing: OneEuroConfig | None = None,
    fps: float = 30.0,
) -> list[list[list[dict[str, Any]]]]:
    """Run a fresh :class:`Tracker` over each clip's per-frame detections."""
    tracker = Tracker(keypoints, config, smooth=smoothing, fps=fps)
    out = []
    for frames in detections:
        tracker.reset()
        out.append([tracker.update(people) for people in frames])
    return out


def predict_clips(predictor: Detector, ann: Any, clips: Sequence[Clip]) -> list[list[list[dict[str, Any]]]]:
    """Run ``predictor`` on every frame of every clip (images read in the annotations' frame)."""
    import sys

    from tqdm import tqdm

    ann.check_images([i for c in clips for i in c.image_ids], "frames")
    bar = tqdm(total=sum(len(c) for c in clips), desc="frames", unit="frame", file=sys.stderr)
    out = []
    for clip in clips:
        frames = []
        for image_id in clip.image_ids:
            frames.append(list(predictor(ann.read_image(image_id))))
            bar.update()
        out.append(frames)
    bar.close()
    return out


def read_frames_jsonl(path: Any, ann: Any, clips: Sequence[Clip]) -> tuple[list[list[list[dict[str, Any]]]], bool]:
    """Per-frame people from JSON lines (``{"file_name" or "image_id", "people": [...]}``, as
    ``litepose predict --track`` writes for a folder of frames), arranged as the clips' frames; a frame
    without a line has no people. Returns them and whether every person carries ``track_id``
    (then they are scored as given). A bad line is a one-line ValueError naming the file and line."""
    from pathlib import Path

    from ..data.jsonio import parse_json

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    by_name = {Path(ann.image_info(i)["file_name"]).name: i for c in clips for i in c.image_ids}
    known = set(by_name.values())
    people_of: dict[int, list[dict[str, Any]]] = {}
    k = ann.num_joints
    tracked = True
    with open(path) as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = parse_json(line, f"{path}, line {n}")
                image_id = row["image_id"] if "image_id" in row else by_name[Path(row["file_name"]).name]
                people = [dict(p, keypoints=np.asarray(p["keypoints"], float).reshape(k, 3)) for p in row["people"]]
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(
                    f"{path}, line {n}: not a frame of the clips ({type(e).__name__}: {e}); each line needs "
                    f"file_name (or image_id) of an image of {ann.path} and people with {k} keypoints"
                ) from None
            if image_id not in known:
                raise ValueError(f"{path}, line {n}: image {image_id} is not a frame of the clips of {ann.path}")
            tracked = tracked and all("track_id" in p for p in people)
            people_of[image_id] = people
    if not people_of:
        raise ValueError(f"{path}: no frames")
    frames = [[people_of.get(i, []) for i in c.image_ids] for c in clips]
    return frames, tracked


def _hyp_arrays(people: Sequence[dict[str, Any]], k: int, kpt_threshold: float):
    """(ids, keypoints (H, K, 3), valid (H, K)) of a frame's people that have a track id."""
    tracked = [p for p in people if p.get("track_id") is not None]
    ids = np.array([int(p["track_id"]) for p in tracked], np.int64)
    kp = np.array([np.asarray(p["keypoints"], np.float64).reshape(k, 3) for p in tracked]).reshape(-1, k, 3)
    valid = (kp[..., 2] > kpt_threshold) & np.isfinite(kp[..., :2]).all(-1)
    return ids, np.nan_to_num(kp), valid


def similarity_matrix(gt: np.ndarray, areas: np.ndarray, hyp: np.ndarray, hyp_valid: np.ndarray, sigmas) -> np.ndarray:
    """(G, H) OKS between ground-truth people (G, K, 3 with visibility; areas (G,)) and hypotheses
    (H, K, 2+; which joints exist (H, K)): the similarity the metrics use."""
    return oks_matrix(gt, gt[..., 2] > 0, hyp, hyp_valid, sigmas, areas, normalise="ref")


def _accelerations(tracks: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]]) -> list[float]:
    acc: list[float] = []
    for frames in tracks.values():
        for f, (x1, v1) in frames.items():
            if f - 1 in frames and f + 1 in frames:
                x0, v0 = frames[f - 1]
                x2, v2 = frames[f + 1]
                ok = v0 & v1 & v2
                acc.extend(np.linalg.norm(x2[ok] - 2 * x1[ok] + x0[ok], axis=1).tolist())
    return acc


def tracking_metrics(
    clips: Sequence[Clip],
    tracked: Sequence[Sequence[Sequence[dict[str, Any]]]],
    keypoints: KeypointSet,
    *,
    kpt_threshold: float = 0.1,
    oks_threshold: float = 0.5,
    max_shift: int = 3,
) -> dict[str, Any]:
    """motmetrics' MOTA / IDF1 / switches (and more: :data:`MOT_FIELDS`), jitter and lag of
    ``tracked`` (per clip, per frame, people with ``track_id``) against the clips' ground truth."""
    import motmetrics as mm

    k = keypoints.num_joints
    sigmas = np.asarray(keypoints.sigmas)
    acc = mm.MOTAccumulator(auto_id=False)
    frame = 0
    hyp_tracks: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = defaultdict(dict)
    gt_tracks: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = defaultdict(dict)
    gt_key: dict[tuple[int, int], int] = {}
    for ci, (clip, frames) in enumerate(zip(clips, tracked)):
        if len(frames) != len(clip):
            raise ValueError(f"clip {clip.vid}: {len(frames)} tracked frames for {len(clip)} frames")
        for ids, kps, areas, people in zip(clip.ids, clip.keypoints, clip.areas, frames):
            oids = np.array([gt_key.setdefault((ci, int(i)), len(gt_key)) for i in ids], np.int64)
            hids, hkp, hvalid = _hyp_arrays(people, k, kpt_threshold)
            hids = hids + ci * 1_000_000  # ids are per clip
            sim = similarity_matrix(kps, areas, hkp, hvalid, sigmas)
            dist = np.where(sim >= oks_threshold, 1.0 - sim, np.nan)
            acc.update(oids.tolist(), hids.tolist(), dist, frameid=frame)
            for o, kp in zip(oids, kps):
                gt_tracks[int(o)][frame] = (kp[:, :2], kp[:, 2] > 0)
            for h, kp, v in zip(hids, hkp, hvalid):
                hyp_tracks[int(h)][frame] = (kp[:, :2], v)
            frame += 1
    mh = mm.metrics.create()
    summary = mh.compute(acc, metrics=list(MOT_FIELDS), name="all")
    row = {f: summary[f].iloc[0] for f in MOT_FIELDS}
    out: dict[str, Any] = {
        f: (int(v) if f.startswith(("num_", "mostly")) else round(float(v), 4) if np.isfinite(v) else None)
        for f, v in row.items()
    }
    objects = max(out["num_objects"], 1)
    out["switches_per_100_track_frames"] = round(100.0 * out["num_switches"] / objects, 3)
    out["track_frames"] = out["num_objects"]
    out["num_tracks"] = len(hyp_tracks)

    # the ground-truth person each track was matched to most often
    ev = acc.mot_events
    matched = ev[ev["Type"].isin(["MATCH", "SWITCH"])]
    votes: dict[int, Counter] = defaultdict(Counter)
    for o, h in zip(matched["OId"].to_numpy(), matched["HId"].to_numpy()):
        votes[int(h)][int(o)] += 1
    lags, errors = [], []
    for h, counter in votes.items():
        o = counter.most_common(1)[0][0]
        hyp, gt = hyp_tracks[h], gt_tracks[o]
        best, best_d = math.inf, None
        for d in range(-max_shift, max_shift + 1):
            dist = [
                np.linalg.norm(x[v & gt[f - d][1]] - gt[f - d][0][v & gt[f - d][1]], axis=1).mean()
                for f, (x, v) in hyp.items()
                if f - d in gt and (v & gt[f - d][1]).any()
            ]
            if len(dist) >= 5 and np.mean(dist) < best:
                best, best_d = float(np.mean(dist)), d
            if d == 0 and dist:
                errors.append(float(np.mean(dist)))
        if best_d is not None:
            lags.append(best_d)
    jit = _accelerations(hyp_tracks)
    gt_jit = _accelerations(gt_tracks)
    out["jitter"] = round(float(np.mean(jit)), 3) if jit else None
    out["gt_jitter"] = round(float(np.mean(gt_jit)), 3) if gt_jit else None
    out["lag_frames"] = float(np.median(lags)) if lags else None
    out["lag_tracks"] = len(lags)
    out["error_px"] = round(float(np.mean(errors)), 3) if errors else None
    return out


def evaluate_tracking(
    clips: Sequence[Clip],
    detections: Sequence[Sequence[Sequence[Any]]],
    keypoints: KeypointSet,
    config: TrackerConfig | None = None,
    smoothing: OneEuroConfig | None = None,
    *,
    fps: float = 30.0,
    kpt_threshold: float | None = None,
) -> dict[str, Any]:
    """Track ``detections`` (per clip, per frame, people) without and with smoothing and score both:
    ``{"raw": metrics, "smoothed": metrics, "jitter_reduction": fraction, "tracker": settings}``."""
    config = config or TrackerConfig()
    smoothing = smoothing or OneEuroConfig()
    thr = config.kpt_threshold if kpt_threshold is None else kpt_threshold
    raw = tracking_metrics(clips, track_clips(detections, keypoints, config, None, fps), keypoints, kpt_threshold=thr)
    smooth = tracking_metrics(
        clips, track_clips(detections, keypoints, config, smoothing, fps), keypoints, kpt_threshold=thr
    )
    out: dict[str, Any] = {"raw": raw, "smoothed": smooth}
    if raw["jitter"] and smooth["jitter"] is not None:
        out["jitter_reduction"] = round(1.0 - smooth["jitter"] / raw["jitter"], 4)
    out["settings"] = Tracker(keypoints, config, smooth=smoothing, fps=fps).settings
    return out


def format_tracking(metrics: dict[str, Any]) -> str:
    """A small table of the tracking metrics, without and with smoothing (and as given, if any)."""
    cols = [c for c in ("given", "raw", "smoothed") if c in metrics]
    rows = [
        ("IDF1", "idf1"), ("MOTA", "mota"), ("MOTP (1 - OKS)", "motp"), ("ID switches", "num_switches"),
        ("switches / 100 track-frames", "switches_per_100_track_frames"), ("false positives", "num_false_positives"),
        ("misses", "num_misses"), ("track-frames (GT)", "track_frames"), ("tracks", "num_tracks"),
        ("jitter px/frame^2", "jitter"), ("GT jitter px/frame^2", "gt_jitter"), ("lag frames (median)", "lag_frames"),
        ("joint error px", "error_px"),
    ]  # fmt: skip
    head = ["metric".ljust(28)] + [c.rjust(10) for c in cols]
    lines = [" ".join(head)]
    for label, key in rows:
        vals = []
        for c in cols:
            v = metrics[c].get(key)
            vals.append(("-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)).rjust(10))
        lines.append(" ".join([label.ljust(28), *vals]))
    if "jitter_reduction" in metrics:
        lines.append(f"smoothing cuts jitter by {100 * metrics['jitter_reduction']:.1f}%")
    lines.append("similarity: OKS (keypoint set's sigmas, GT area), match at OKS >= 0.5; metrics: motmetrics")
    return "\n".join(lines)
