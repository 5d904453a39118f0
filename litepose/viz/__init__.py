"""Skeleton overlays: one colour per person, limbs from the keypoint set's skeleton.

``draw_people(image_rgb, people, keypoints)`` returns a new RGB image. ``people`` is what
:class:`litepose.Predictor` returns (dicts with ``keypoints`` (K, 3), optional ``score`` /
``box``) or a (P, K, 3) array, e.g. ground truth with visibility as the third column.

Tracked people (dicts with ``track_id``, :class:`litepose.Tracker`) take the colour of their id,
the same in every frame, and are labelled with it; tentative ones (``track_id`` None) are grey.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from ..data.keypoints import KeypointSet

__all__ = ["draw_people", "draw_people_into", "person_color", "TENTATIVE_COLOR"]

#: The colour of people whose track is tentative (``track_id`` None).
TENTATIVE_COLOR = (170, 170, 170)


def person_color(i: int) -> tuple[int, int, int]:
    """A distinct, saturated RGB colour for person ``i`` (golden-ratio hue steps)."""
    h = (i * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def _as_keypoints(people: Sequence[Any] | np.ndarray) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
    if isinstance(people, np.ndarray):
        if people.ndim != 3 or people.shape[2] < 3:
            raise ValueError(f"people array must be (P, K, 3), got shape {people.shape}")
        return [np.asarray(p, np.float32) for p in people], [{} for _ in people]
    kps, extra = [], []
    for p in people:
        if isinstance(p, dict):
            kps.append(np.asarray(p["keypoints"], np.float32))
            extra.append(p)
        else:
            kps.append(np.asarray(p, np.float32))
            extra.append({})
    return kps, extra


def draw_people(
    image_rgb: np.ndarray,
    people: Sequence[Any] | np.ndarray,
    keypoints: KeypointSet,
    kpt_threshold: float = 0.1,
    *,
    min_score: float = 0.0,
    draw_boxes: bool = False,
    draw_scores: bool = False,
    thickness: int | None = None,
) -> np.ndarray:
    """Draw each person's skeleton on a copy of ``image_rgb`` (H, W, 3) uint8.

    A joint is drawn when its score (third column) exceeds ``kpt_threshold``; a limb when both
    its joints are. A person with a ``score`` below ``min_score`` is not drawn (people given as bare
    arrays have no score and are always drawn). Limbs take the person's colour, joints a dot in the
    keypoint set's colour (left / right / centre) ringed with the person's colour. Line widths follow
    the image size (at most 4 pixels). A person with a ``track_id`` is drawn in its id's colour and
    labelled with the id.
    """
    img = np.ascontiguousarray(image_rgb, dtype=np.uint8)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB, got shape {img.shape}")
    img = img.copy()
    draw_people_into(img, people, keypoints, kpt_threshold, min_score=min_score, draw_boxes=draw_boxes,
                     draw_scores=draw_scores, thickness=thickness)  # fmt: skip
    return img


def draw_people_into(
    img: np.ndarray,
    people: Sequence[Any] | np.ndarray,
    keypoints: KeypointSet,
    kpt_threshold: float = 0.1,
    *,
    min_score: float = 0.0,
    draw_boxes: bool = False,
    draw_scores: bool = False,
    thickness: int | None = None,
    bgr: bool = False,
) -> np.ndarray:
    """:func:`draw_people` in place on ``img`` (H, W, 3) uint8, contiguous; ``bgr``: ``img`` is in
    OpenCV's channel order (colours are swapped to match), so that a video frame converted for the
    encoder is drawn on as is, without another full-frame copy. Returns ``img``.

    Cost: one ``cv2.polylines`` call per person for its limbs and a few for its joints (discs are
    zero-length thick segments), whatever the number of joints, so that a 1080p frame of 30 people
    draws in about 10 ms on one core (filling its pixels is most of that; two people: 1 ms); lines are
    anti-aliased only in images under 1280 pixels wide and high (above, 8-connected lines look the same
    and cost a third), and at most 4 pixels wide."""
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got shape {img.shape} {img.dtype}")
    kps, extra = _as_keypoints(people)
    k = keypoints.num_joints
    t = thickness or min(4, max(1, int(round(max(img.shape[:2]) / 320))))  # wider costs more than it shows
    radius = t + 2
    line = cv2.LINE_AA if max(img.shape[:2]) < 1280 else cv2.LINE_8
    order = (lambda c: (int(c[2]), int(c[1]), int(c[0]))) if bgr else (lambda c: (int(c[0]), int(c[1]), int(c[2])))
    edges = np.asarray(keypoints.skeleton, np.int64).reshape(-1, 2)
    joint_colors = np.asarray(keypoints.keypoint_colors, np.int64).reshape(-1, 3)
    shades = {tuple(c) for c in joint_colors.tolist()}
    drawn = 0
    for i, (kp, ex) in enumerate(zip(kps, extra)):
        if kp.shape[0] != k:
            raise ValueError(f"person {i} has {kp.shape[0]} keypoints, the keypoint set {keypoints.name!r} has {k}")
        if float(ex.get("score", 1.0)) < min_score:
            continue
        tracked = "track_id" in ex
        tid = ex.get("track_id")
        rgb = (person_color(int(tid)) if tid is not None else TENTATIVE_COLOR) if tracked else person_color(drawn)
        color = order(rgb)
        drawn += 1
        ok = np.isfinite(kp[:, :2]).all(axis=1) & (kp[:, 2] > kpt_threshold)
        if not ok.any():
            continue
        pts = np.round(np.nan_to_num(kp[:, :2])).astype(np.int32)
        limbs = edges[ok[edges[:, 0]] & ok[edges[:, 1]]] if len(edges) else edges
        if len(limbs):
            cv2.polylines(img, list(pts[limbs]), False, color, t, line)
        shown = pts[ok]
        cv2.polylines(img, list(shown[:, None, :].repeat(2, axis=1)), False, color, 2 * radius - 1, line)
        inner = 2 * max(radius - t, 1) - 1
        for shade in shades:
            mine = ok & (joint_colors == shade).all(axis=1)
            if mine.any():
                dots = list(pts[mine][:, None, :].repeat(2, axis=1))
                cv2.polylines(img, dots, False, order(shade), inner, line)
        if tid is not None:
            top = int(np.argmin(np.where(ok, kp[:, 1], np.inf)))
            x, y = int(pts[top][0]), int(pts[top][1]) - 3 * radius
            scale = 0.45 * t
            cv2.putText(img, str(int(tid)), (x, max(y, 12)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 2 * t + 1,
                        cv2.LINE_AA)  # fmt: skip
            cv2.putText(img, str(int(tid)), (x, max(y, 12)), cv2.FONT_HERSHEY_SIMPLEX, scale, color, t, cv2.LINE_AA)
        if draw_boxes or draw_scores:
            box = ex.get("box")
            if box is None:
                sel = kp[ok]
                box = (sel[:, 0].min(), sel[:, 1].min(), sel[:, 0].max(), sel[:, 1].max())
            x1, y1, x2, y2 = (int(round(float(v))) for v in box)
            if draw_boxes:
                cv2.rectangle(img, (x1, y1), (x2, y2), color, t)
            if draw_scores and "score" in ex:
                cv2.putText(
                    img, f"{ex['score']:.2f}", (x1, max(y1 - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * t, color, t
                )
    return img
