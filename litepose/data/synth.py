"""SynthPose: a built-in synthetic multi-person keypoint dataset on the COCO 17-keypoint skeleton.

COCO and CrowdPose cannot be downloaded on every machine, so litepose ships a generator of
COCO-format data to demo, test and benchmark learning end to end. Each image shows 1 to 8
articulated figures drawn with OpenCV (torso, head with eyes, nose and ears, two-segment limbs,
hands and feet) on a textured background with distractor shapes; figures overlap and hide each
other, foreground objects hide parts of them, some stand partly outside the image, and some
images hold a crowd of tiny figures marked as an ``iscrowd`` region.

Labels follow COCO: ``v=2`` a joint whose pixel shows its own figure, ``v=1`` a joint inside the
image hidden by another figure, an object or its own head (the far ear of a turned head),
``v=0`` (with x = y = 0) outside the image. ``area`` = visible silhouette pixels,
``segmentation`` = RLE of the visible silhouette, ``bbox`` = its box. Keypoint coordinates are
continuous (pixel ``i`` covers ``[i, i + 1)``), so a ``v=2`` joint lies inside its ``bbox``.

As in COCO, people too small or too hidden to annotate carry no keypoints: a figure whose
visible area is under 32x32 image pixels (:data:`MIN_AREA`) or that shows fewer than 3 joints
(:data:`MIN_VISIBLE`, ``v=2``) keeps its annotation, segmentation and box, but all its keypoints
are zero and ``num_keypoints`` is 0. Training masks such people (their silhouette is ignored and
they take no embedding row) and the evaluator ignores them (version 2; version 1 labelled
everyone).

Left and right are told apart by geometry only: figures face the camera (turned by at most 60
degrees), so a figure's left side is on the image's right. Both sides are drawn in the same
colours, so a horizontally flipped image (whose labels are swapped) is as plausible as the
original (version 1 drew the left limbs lighter, a cue that flip augmentation contradicted).

The difficulty is fixed (tests/test_synth.py): 1-8 people per image (mean 4.5), person height
15-90 % of the image height, >= 25 % of images with people hiding each other, >= 10 % of
labelled joints occluded. Everything is deterministic by ``(seed, image index)``.

Public API::

    make_synthpose(output, num_images, seed=0, size=(320, 256), sequence=0)  # -> annotations.json
    render_image(seed, index, size) -> SynthImage   # one image, its annotations and metadata
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .jsonio import read_json
from .keypoints import COCO

__all__ = [
    "make_synthpose",
    "render_image",
    "render_sequence",
    "SynthImage",
    "DEFAULT_SIZE",
    "SYNTHPOSE_VERSION",
    "synthpose_version",
    "synthpose_current",
]

#: Bumped whenever the labels or images of a given (seed, index) change; folders and training runs
#: of another version are regenerated / refused, never silently reused.
SYNTHPOSE_VERSION = 2
MIN_AREA = 32 * 32  # visible silhouette pixels below which a person gets no keypoints (COCO)
MIN_VISIBLE = 3  # visible (v=2) joints below which a person gets no keypoints
DEFAULT_SIZE = (320, 256)  # (width, height)

K = 17
NOSE, L_EYE, R_EYE, L_EAR, R_EAR = 0, 1, 2, 3, 4
L_SHO, R_SHO, L_ELB, R_ELB, L_WRI, R_WRI = 5, 6, 7, 8, 9, 10
L_HIP, R_HIP, L_KNE, R_KNE, L_ANK, R_ANK = 11, 12, 13, 14, 15, 16

OCCLUDER = 255  # label of foreground objects in the label map
CROWD = 254  # label of the tiny figures of a crowd region
SHIFT = 4  # OpenCV sub-pixel bits
ONE = 1 << SHIFT

# Body proportions as fractions of the standing height h (ankle to top of head).
HIP_HALF, SHO_HALF = 0.09, 0.12
TORSO, NECK = 0.30, 0.11
UPPER_ARM, FOREARM, THIGH, SHIN = 0.17, 0.16, 0.25, 0.25
HEAD_RX, HEAD_RY = 0.062, 0.075

SKIN = ((224, 172, 140), (198, 134, 66), (141, 85, 36), (255, 219, 172), (110, 70, 50), (234, 192, 134))


@dataclass
class Figure:
    """Parameters of one figure; ``step`` animates it for sequences."""

    cx: float  # pelvis (mid-hip) position, image pixels
    cy: float
    h: float  # standing height in pixels
    lean: float  # torso lean (radians, + = top to image right)
    yaw: float  # head / body turn (radians, |yaw| <= 60 deg)
    tilt: float  # head tilt
    arm: list[float]  # [left, right] shoulder angle from hanging down, + = away from the body
    elbow: list[float]  # signed elbow bend
    leg: list[float]  # hip angle, + = away from the body
    knee: list[float]  # signed knee bend
    fore: list[float]  # foreshortening of upper arm, forearm, thigh, shin (left, right) -> 8 values
    shirt: tuple[int, int, int]
    pants: tuple[int, int, int]
    skin: tuple[int, int, int]
    shoes: tuple[int, int, int]
    vx: float = 0.0
    vy: float = 0.0
    phase: float = 0.0
    speed: float = 0.0
    track_id: int = 0
    base: dict[str, Any] = field(default_factory=dict)

    def step(self, width: int, height: int) -> None:
        """Advance one frame: move, bounce off the borders, swing arms and legs (a walk cycle)."""
        self.cx += self.vx
        self.cy += self.vy
        if not (0.05 * width <= self.cx <= 0.95 * width):
            self.vx = -self.vx
            self.cx = min(max(self.cx, 0.05 * width), 0.95 * width)
        lo, hi = _pelvis_range(self.h, height)
        if not (lo <= self.cy <= hi):
            self.vy = -self.vy
            self.cy = min(max(self.cy, lo), hi)
        self.phase += self.speed
        s = math.sin(self.phase)
        b = self.base
        self.leg = [b["leg"][0] + 0.35 * s, b["leg"][1] - 0.35 * s]
        self.knee = [b["knee"][0] + 0.4 * max(0.0, s), b["knee"][1] + 0.4 * max(0.0, -s)]
        self.arm = [b["arm"][0] - 0.4 * s, b["arm"][1] + 0.4 * s]


def _pelvis_range(h: float, height: int) -> tuple[float, float]:
    """Pelvis heights that keep the feet between 0.92 * min(h, height) and 0.2 h below the image."""
    return 0.92 * min(h, height) - 0.5 * h, height - 0.3 * h


@dataclass
class SynthImage:
    """One rendered image: RGB pixels, COCO annotations (no ids yet) and per-figure metadata."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    annotations: list[dict[str, Any]]  # person annotations, then the crowd region if any
    heights: list[float]  # standing height of each annotated figure, pixels
    hidden_by_people: list[int]  # per figure: its silhouette pixels hidden by other figures
    silhouette: list[int]  # per figure: its full silhouette pixels


# ---------------------------------------------------------------------------------------------
# Geometry


def _rot(vx: float, vy: float, a: float) -> tuple[float, float]:
    c, s = math.cos(a), math.sin(a)
    return vx * c - vy * s, vx * s + vy * c


def _joints(f: Figure) -> tuple[np.ndarray, dict[str, Any]]:
    """Amodal joints (17, 2) in continuous image coordinates, and the extra drawing geometry."""
    h = f.h
    ux, uy = math.sin(f.lean), -math.cos(f.lean)  # body up
    rx, ry = -uy, ux  # image-right of the body (the figure's left side faces image right)
    c = math.cos(f.yaw)
    s = math.sin(f.yaw)
    j = np.zeros((K, 2))
    px, py = f.cx, f.cy
    hw, sw = HIP_HALF * h * (0.75 + 0.25 * c), SHO_HALF * h * (0.7 + 0.3 * c)
    j[L_HIP] = (px + rx * hw, py + ry * hw)
    j[R_HIP] = (px - rx * hw, py - ry * hw)
    sx, sy = px + ux * TORSO * h, py + uy * TORSO * h
    j[L_SHO] = (sx + rx * sw, sy + ry * sw)
    j[R_SHO] = (sx - rx * sw, sy - ry * sw)
    hux, huy = _rot(ux, uy, f.tilt)
    hrx, hry = -huy, hux
    hcx, hcy = sx + hux * NECK * h, sy + huy * NECK * h
    # Face: turning moves the features toward the side the figure looks at.
    turn = s * 0.045 * h
    j[NOSE] = (hcx + hrx * turn - hux * 0.005 * h, hcy + hry * turn - huy * 0.005 * h)
    for k, side in ((L_EYE, 1.0), (R_EYE, -1.0)):
        off = side * 0.026 * h * c + 0.8 * turn
        j[k] = (hcx + hrx * off + hux * 0.018 * h, hcy + hry * off + huy * 0.018 * h)
    for k, side in ((L_EAR, 1.0), (R_EAR, -1.0)):
        off = side * 0.052 * h * (0.6 + 0.4 * c) - 0.3 * turn
        j[k] = (hcx + hrx * off + hux * 0.008 * h, hcy + hry * off + huy * 0.008 * h)
    dx, dy = -ux, -uy  # body down
    for i, side in enumerate((1.0, -1.0)):
        sho, elb, wri = (L_SHO, L_ELB, L_WRI) if i == 0 else (R_SHO, R_ELB, R_WRI)
        ax, ay = _rot(dx, dy, -side * f.arm[i])
        a1 = UPPER_ARM * h * f.fore[i * 4]
        j[elb] = j[sho] + (ax * a1, ay * a1)
        bx, by = _rot(ax, ay, -side * f.elbow[i])
        a2 = FOREARM * h * f.fore[i * 4 + 1]
        j[wri] = j[elb] + (bx * a2, by * a2)
        hip, kne, ank = (L_HIP, L_KNE, L_ANK) if i == 0 else (R_HIP, R_KNE, R_ANK)
        lx, ly = _rot(dx, dy, -side * f.leg[i])
        l1 = THIGH * h * f.fore[i * 4 + 2]
        j[kne] = j[hip] + (lx * l1, ly * l1)
        mx, my = _rot(lx, ly, side * f.knee[i])
        l2 = SHIN * h * f.fore[i * 4 + 3]
        j[ank] = j[kne] + (mx * l2, my * l2)
    # Hidden far ear: the head hides it once the figure turns by more than ~30 degrees.
    hidden = set()
    if s > 0.5:
        hidden.add(L_EAR)
    elif s < -0.5:
        hidden.add(R_EAR)
    geo = {"head": (hcx, hcy), "neck": (sx, sy), "up": (hux, huy), "hidden": hidden}
    return j, geo


def _pt(x: float, y: float) -> tuple[int, int]:
    # Continuous coordinates (pixel i covers [i, i+1)) -> OpenCV fixed point (pixel centres at integers).
    return int(round((x - 0.5) * ONE)), int(round((y - 0.5) * ONE))


def _draw_figure(img: np.ndarray, lab: np.ndarray, f: Figure, j: np.ndarray, geo: dict[str, Any], label: int) -> None:
    """Draw one figure into the RGB image and its label into the label map (same primitives)."""
    import cv2

    h = f.h

    def t(frac: float) -> int:
        return max(2, int(round(frac * h)))

    ops: list[tuple[Any, ...]] = []  # (kind, geometry..., colour)
    # Legs (behind the torso), then torso, neck, head, arms (in front), hands.
    for side, (hip, kne, ank) in ((1, (L_HIP, L_KNE, L_ANK)), (-1, (R_HIP, R_KNE, R_ANK))):
        ops.append(("line", j[hip], j[kne], t(0.085), f.pants))
        ops.append(("line", j[kne], j[ank], t(0.065), f.pants))
        foot = j[ank] + (side * 0.035 * h * math.cos(f.lean), 0.01 * h)
        ops.append(("line", j[ank], foot, t(0.04), f.shoes))
    torso = np.stack([j[L_SHO], j[R_SHO], j[R_HIP], j[L_HIP]])
    centre = torso.mean(0)
    ops.append(("poly", centre + (torso - centre) * 1.18, f.shirt))
    ops.append(("line", geo["neck"], geo["head"], t(0.06), f.skin))
    ops.append(("head", geo["head"], f.skin))
    for sho, elb, wri in ((L_SHO, L_ELB, L_WRI), (R_SHO, R_ELB, R_WRI)):
        ops.append(("line", j[sho], j[elb], t(0.06), f.shirt))
        ops.append(("line", j[elb], j[wri], t(0.045), f.skin))
        ops.append(("circle", j[wri], 0.03 * h, f.skin))
    angle = math.degrees(math.atan2(geo["up"][0], -geo["up"][1]))
    axes = (max(ONE, int(HEAD_RX * h * ONE)), max(ONE, int(HEAD_RY * h * ONE)))
    for target, own in ((img, True), (lab, False)):
        for op in ops:
            colour = op[-1] if own else label
            kind = op[0]
            if kind == "line":
                cv2.line(target, _pt(*op[1]), _pt(*op[2]), colour, op[3], cv2.LINE_8, SHIFT)
            elif kind == "poly":
                pts = np.round((op[1] - 0.5) * ONE).astype(np.int32)
                cv2.fillConvexPoly(target, pts, colour, cv2.LINE_8, SHIFT)
            elif kind == "circle":
                cv2.circle(target, _pt(*op[1]), max(ONE, int(op[2] * ONE)), colour, -1, cv2.LINE_8, SHIFT)
            else:  # head
                cv2.ellipse(target, _pt(*op[1]), axes, angle, 0, 360, colour, -1, cv2.LINE_8, SHIFT)
    # Face details (image only): eyes and the nose tip.
    r = max(1, int(round(0.012 * h))) * ONE
    for k in (L_EYE, R_EYE):
        cv2.circle(img, _pt(*j[k]), r, (30, 30, 30), -1, cv2.LINE_8, SHIFT)
    nose = tuple(int(v * 0.55) for v in f.skin)  # a darker shade of the skin
    cv2.circle(img, _pt(*j[NOSE]), r, nose, -1, cv2.LINE_8, SHIFT)


# ---------------------------------------------------------------------------------------------
# Sampling


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))  # type: ignore[return-value]


def _figure(rng: np.random.Generator, width: int, height: int, h: float, cx: float) -> Figure:
    lo, hi = _pelvis_range(h, height)
    cy = float(rng.uniform(lo, hi))
    lean = float(np.clip(rng.normal(0, 0.15), -0.5, 0.5)) if rng.random() < 0.9 else float(rng.uniform(-0.9, 0.9))
    arm = [float(rng.uniform(-0.3, 2.9)) if rng.random() < 0.5 else float(rng.uniform(0.0, 0.6)) for _ in range(2)]
    elbow = [float(rng.uniform(-0.3, 2.4)) for _ in range(2)]
    leg = [float(rng.uniform(-0.15, 0.55)) if rng.random() < 0.8 else float(rng.uniform(0.5, 1.0)) for _ in range(2)]
    knee = [float(rng.uniform(-0.2, 0.6)) if rng.random() < 0.8 else float(rng.uniform(0.6, 1.6)) for _ in range(2)]
    fore = [float(v) for v in rng.uniform(0.65, 1.0, 8)]
    return Figure(
        cx=cx,
        cy=cy,
        h=h,
        lean=lean,
        yaw=float(rng.uniform(-1.05, 1.05)),
        tilt=float(rng.normal(0, 0.15)),
        arm=arm,
        elbow=elbow,
        leg=leg,
        knee=knee,
        fore=fore,
        shirt=_colour(rng),
        pants=_colour(rng),
        skin=SKIN[int(rng.integers(len(SKIN)))],
        shoes=tuple(int(v) for v in rng.integers(0, 90, 3)),  # type: ignore[arg-type]
        base={"arm": list(arm), "leg": list(leg), "knee": list(knee)},
    )


def _figures(rng: np.random.Generator, width: int, height: int) -> list[Figure]:
    n = int(rng.integers(1, 9))
    group = rng.random() < 0.5  # a group stands close together: overlaps and occlusion
    gx = rng.uniform(0.25, 0.75) * width
    out = []
    for _ in range(n):
        h = float(rng.uniform(0.15, 0.9)) * height
        cx = float(np.clip(rng.normal(gx, 0.12 * width), 0.03 * width, 0.97 * width))
        if not group:
            cx = float(rng.uniform(0.03, 0.97) * width)
        out.append(_figure(rng, width, height, h, cx))
    return out


def _shape(rng: np.random.Generator, targets: list[tuple[np.ndarray, Any]], width: int, height: int) -> None:
    """A random distractor (rectangle, circle, ellipse, limb-like stick or polygon) drawn into each target."""
    import cv2

    kind = int(rng.integers(5))
    x, y = rng.uniform(0, width), rng.uniform(0, height)
    size = rng.uniform(0.04, 0.3) * height
    a, b = rng.uniform(0.3, 1.5), rng.uniform(0, math.pi)
    poly = rng.uniform(-size, size, (int(rng.integers(3, 7)), 2))
    for tgt, c in targets:
        if kind == 0:
            cv2.rectangle(tgt, _pt(x, y), _pt(x + size * a, y + size), c, -1, cv2.LINE_8, SHIFT)
        elif kind == 1:
            cv2.circle(tgt, _pt(x, y), int(size * 0.5 * ONE), c, -1, cv2.LINE_8, SHIFT)
        elif kind == 2:
            axes = (int(size * 0.6 * ONE), int(size * 0.25 * ONE))
            cv2.ellipse(tgt, _pt(x, y), axes, math.degrees(b), 0, 360, c, -1, cv2.LINE_8, SHIFT)
        elif kind == 3:
            x2, y2 = x + math.cos(b) * size * 1.5, y + math.sin(b) * size * 1.5
            cv2.line(tgt, _pt(x, y), _pt(x2, y2), c, max(2, int(size * 0.2)), cv2.LINE_8, SHIFT)
        else:
            pts = np.array([_pt(x + dx, y + dy) for dx, dy in poly], np.int32)
            cv2.fillPoly(tgt, [pts], c, cv2.LINE_8, SHIFT)


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A textured background: smooth colour field, tiles or stripes, plus grain and distractor shapes."""
    import cv2

    kind = int(rng.integers(3))
    if kind < 2:
        lo, hi = ((2, 9), (3, 16))[kind]
        gh, gw = (int(v) for v in rng.integers(lo, hi, 2))
        small = rng.integers(0, 256, (gh, gw, 3), dtype=np.uint8)
        interp = cv2.INTER_CUBIC if kind == 0 else cv2.INTER_NEAREST
        img = cv2.resize(small, (width, height), interpolation=interp)
    else:  # stripes
        img = np.empty((height, width, 3), np.uint8)
        img[:] = _colour(rng)
        ang = rng.uniform(0, math.pi)
        dx, dy = math.cos(ang), math.sin(ang)
        col = _colour(rng)
        step = rng.uniform(6, 30)
        thick = max(1, int(step * rng.uniform(0.2, 0.5)))
        diag = width + height
        for k in range(int(2 * diag / step)):
            off = -diag + k * step
            cx, cy = width / 2 - off * dy, height / 2 + off * dx
            cv2.line(img, _pt(cx - dx * diag, cy - dy * diag), _pt(cx + dx * diag, cy + dy * diag), col, thick,
                     cv2.LINE_8, SHIFT)  # fmt: skip
    grain = rng.integers(0, 48, (height // 4 + 1, width // 4 + 1), dtype=np.uint8)
    grain = cv2.resize(grain, (width, height), interpolation=cv2.INTER_LINEAR)
    img = cv2.subtract(cv2.add(img, cv2.merge([grain, grain, grain])), (24, 24, 24, 0))
    for _ in range(int(rng.integers(4, 15))):
        _shape(rng, [(img, _colour(rng))], width, height)
    return img


def _occluders(rng: np.random.Generator, img: np.ndarray, lab: np.ndarray, width: int, height: int) -> None:
    """Foreground objects in front of the figures: a pole, a box, a blob or any distractor shape."""
    import cv2

    for _ in range(int(rng.integers(1, 3))):
        kind = int(rng.integers(4))
        targets = [(img, _colour(rng)), (lab, OCCLUDER)]
        if kind == 0:
            x = rng.uniform(0, width)
            x2 = x + rng.uniform(-0.1, 0.1) * width
            w = max(3, int(rng.uniform(0.02, 0.06) * width))
            for tgt, c in targets:
                cv2.line(tgt, _pt(x, -10), _pt(x2, height + 10), c, w, cv2.LINE_8, SHIFT)
        elif kind == 1:
            x0, y0 = rng.uniform(-0.1, 0.9) * width, rng.uniform(0.5, 0.95) * height
            x1 = x0 + rng.uniform(0.1, 0.35) * width
            for tgt, c in targets:
                cv2.rectangle(tgt, _pt(x0, y0), _pt(x1, height + 5), c, -1, cv2.LINE_8, SHIFT)
        elif kind == 2:
            cx, cy = rng.uniform(0, width), rng.uniform(0.3, 1.0) * height
            axes = (int(rng.uniform(0.05, 0.15) * width * ONE), int(rng.uniform(0.05, 0.15) * height * ONE))
            for tgt, c in targets:
                cv2.ellipse(tgt, _pt(cx, cy), axes, 0, 0, 360, c, -1, cv2.LINE_8, SHIFT)
        else:
            _shape(rng, targets, width, height)


def _crowd(rng: np.random.Generator, img: np.ndarray, lab: np.ndarray, width: int, height: int) -> None:
    """A crowd of tiny figures in a band of the image (annotated as one iscrowd region)."""
    x0 = rng.uniform(0, 0.6) * width
    x1 = x0 + rng.uniform(0.25, 0.4) * width
    base = rng.uniform(0.3, 0.6) * height
    for _ in range(int(rng.integers(6, 16))):
        h = float(rng.uniform(0.06, 0.11)) * height
        f = _figure(rng, width, height, h, float(rng.uniform(x0, x1)))
        f.cy = base + rng.uniform(-0.05, 0.05) * height - 0.5 * h
        _draw_figure(img, lab, f, *_joints(f), CROWD)


def _mask_fields(mask: np.ndarray) -> tuple[int, list[float], dict[str, Any]]:
    """area, bbox (continuous coordinates) and compressed RLE of a boolean mask."""
    from pycocotools import mask as mask_utils

    height, width = mask.shape
    rle = mask_utils.encode(np.asfortranarray(mask.view(np.uint8)))
    seg = {"size": [height, width], "counts": rle["counts"].decode("ascii")}
    area = int(mask.sum())
    if not area:
        return 0, [0.0, 0.0, 0.0, 0.0], seg
    ys = np.flatnonzero(mask.any(1))
    xs = np.flatnonzero(mask.any(0))
    return area, [float(xs[0]), float(ys[0]), float(xs[-1] + 1 - xs[0]), float(ys[-1] + 1 - ys[0])], seg


@dataclass
class _Scene:
    """What stays fixed in a sequence: the background and the seeds of its extras."""

    background: np.ndarray
    crowd: int | None
    occluders: int | None
    blur: bool


def _scene(rng: np.random.Generator, width: int, height: int) -> _Scene:
    background = _background(rng, width, height)
    crowd = int(rng.integers(2**31)) if rng.random() < 0.15 else None
    occluders = int(rng.integers(2**31)) if rng.random() < 0.4 else None
    return _Scene(background, crowd, occluders, bool(rng.random() < 0.3))


def _render(scene: _Scene, figures: list[Figure], width: int, height: int) -> SynthImage:
    import cv2

    img = scene.background.copy()
    lab = np.zeros((height, width), np.uint8)
    if scene.crowd is not None:
        _crowd(np.random.default_rng(scene.crowd), img, lab, width, height)
    order = sorted(range(len(figures)), key=lambda i: figures[i].cy + 0.5 * figures[i].h)  # far to near
    n = len(order)
    geos = []
    silhouette = np.zeros(n + 1, np.int64)
    hidden = np.zeros(n + 1, np.int64)
    for label, i in enumerate(order, start=1):
        j, geo = _joints(figures[i])
        geos.append((j, geo))
        before = lab.copy()
        _draw_figure(img, lab, figures[i], j, geo, label)
        own = lab == label
        silhouette[label] = int(own.sum())
        covered = before[own]
        covered = covered[(covered >= 1) & (covered < label)]
        hidden += np.bincount(covered, minlength=n + 1)[: n + 1]
    if scene.occluders is not None:
        _occluders(np.random.default_rng(scene.occluders), img, lab, width, height)
    if scene.blur:
        img = cv2.GaussianBlur(img, (3, 3), 0.7)

    annotations = []
    for label, i in enumerate(order, start=1):
        f = figures[i]
        j, geo = geos[label - 1]
        area, bbox, seg = _mask_fields(lab == label)
        kp = np.zeros((K, 3))
        xi = np.floor(j[:, 0]).astype(int)
        yi = np.floor(j[:, 1]).astype(int)
        for k in np.flatnonzero((xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)):
            own = lab[yi[k], xi[k]] == label and k not in geo["hidden"]
            kp[k] = (round(float(j[k, 0]), 2), round(float(j[k, 1]), 2), 2 if own else 1)
        if not area:  # entirely hidden: box of its labelled joints
            v = kp[kp[:, 2] > 0, :2]
            if len(v):
                bbox = [float(v[:, 0].min()), float(v[:, 1].min()), float(np.ptp(v[:, 0])), float(np.ptp(v[:, 1]))]
        if area < MIN_AREA or int((kp[:, 2] == 2).sum()) < MIN_VISIBLE:
            kp[:] = 0  # too small or too hidden to annotate (COCO): no keypoints, masked in training
        ann: dict[str, Any] = {
            "category_id": 1,
            "iscrowd": 0,
            "keypoints": [int(v) if n % 3 == 2 else float(v) for n, v in enumerate(kp.ravel())],
            "num_keypoints": int((kp[:, 2] > 0).sum()),
            "area": area,
            "bbox": [round(v, 2) for v in bbox],
            "segmentation": seg,
        }
        if f.track_id:
            ann["track_id"] = f.track_id
        annotations.append(ann)
    if scene.crowd is not None:
        area, bbox, seg = _mask_fields(lab == CROWD)
        if area:
            annotations.append(
                {
                    "category_id": 1,
                    "iscrowd": 1,
                    "keypoints": [0] * (3 * K),
                    "num_keypoints": 0,
                    "area": area,
                    "bbox": bbox,
                    "segmentation": seg,
                }
            )
    return SynthImage(
        image=img,
        annotations=annotations,
        heights=[figures[i].h for i in order],
        hidden_by_people=[int(v) for v in hidden[1:]],
        silhouette=[int(v) for v in silhouette[1:]],
    )


#: The largest side of a SynthPose image: its masks and renders are whole-image arrays, so a
#: huge size would exhaust memory (or crash the mask encoder) instead of making a dataset.
MAX_SIDE = 4096


def parse_size(size: tuple[int, int] | str) -> tuple[int, int]:
    """``"WxH"`` or ``(w, h)`` -> ``(w, h)``, checked (32 to MAX_SIDE pixels a side)."""
    if isinstance(size, str):
        try:
            w, h = (int(v) for v in size.lower().split("x"))
        except ValueError:
            raise ValueError(f"size {size!r} is not WIDTHxHEIGHT (e.g. 320x256)") from None
    else:
        w, h = (int(v) for v in size)
    if w < 32 or h < 32:
        raise ValueError(f"SynthPose size {w}x{h} is too small (at least 32x32)")
    if w > MAX_SIDE or h > MAX_SIDE:
        raise ValueError(f"SynthPose size {w}x{h} is too large (at most {MAX_SIDE} pixels a side)")
    return w, h


def render_image(seed: int, index: int, size: tuple[int, int] | str = DEFAULT_SIZE) -> SynthImage:
    """Render image ``index`` of the dataset with ``seed`` (independent of every other image)."""
    width, height = parse_size(size)
    rng = np.random.default_rng([int(seed), int(index), 0])
    scene = _scene(rng, width, height)
    return _render(scene, _figures(rng, width, height), width, height)


def render_sequence(seed: int, index: int, frames: int, size: tuple[int, int] | str = DEFAULT_SIZE):
    """Yield the ``frames`` frames of sequence ``index``: one scene, figures that walk and keep ``track_id``."""
    width, height = parse_size(size)
    rng = np.random.default_rng([int(seed), int(index), 1])
    scene = _scene(rng, width, height)
    figures = _figures(rng, width, height)
    for n, f in enumerate(figures, start=1):
        f.track_id = n
        f.vx = float(rng.uniform(0.002, 0.012) * width * rng.choice([-1, 1]))
        f.vy = float(rng.normal(0, 0.001) * height)
        f.speed = float(rng.uniform(0.15, 0.35))
        f.phase = float(rng.uniform(0, 2 * math.pi))
    for _ in range(frames):
        yield _render(scene, figures, width, height)
        for f in figures:
            f.step(width, height)


def synthpose_version(folder: str | Path) -> int | None:
    """The SynthPose version recorded in ``folder/annotations.json`` (``None``: absent, unreadable or not SynthPose)."""
    try:
        info = read_json(Path(folder) / "annotations.json").get("info", {})
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(info, dict) or not str(info.get("description", "")).startswith("SynthPose"):
        return None
    v = info.get("version")
    return int(v) if isinstance(v, int) else None


def synthpose_current(folder: str | Path, images: int | None = None) -> bool:
    """Whether ``folder`` holds SynthPose of the current version (:data:`SYNTHPOSE_VERSION`), with
    ``images`` images when given: the one rule of "present and current" (the trainer's
    ``data.synthpose`` and ``litepose demo`` regenerate what fails it)."""
    if synthpose_version(folder) != SYNTHPOSE_VERSION:
        return False
    if images is None:
        return True
    try:
        return len(read_json(Path(folder) / "annotations.json")["images"]) == images
    except (OSError, ValueError, KeyError, TypeError):
        return False


def coco_category() -> dict[str, Any]:
    """The person category: COCO keypoint names and the 1-based COCO skeleton."""
    return {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(COCO.names),
        "skeleton": [[a + 1, b + 1] for a, b in COCO.skeleton],
    }


def _frames(seed: int, num_images: int, sequence: int, size: tuple[int, int]) -> Iterator[tuple[int, Any, Any]]:
    """``(index, (sequence, frame) or None, rendered frame)`` for each of ``num_images`` images."""
    if not sequence:
        for i in range(num_images):
            yield i, None, render_image(seed, i, size)
        return
    i = 0
    for s in range((num_images + sequence - 1) // sequence):
        for n, frame in enumerate(render_sequence(seed, s, min(sequence, num_images - i), size)):
            yield i, (s, n), frame
            i += 1


def make_synthpose(
    output: str | Path,
    num_images: int,
    seed: int = 0,
    size: tuple[int, int] | str = DEFAULT_SIZE,
    *,
    sequence: int = 0,
    quality: int = 92,
    progress: bool = True,
) -> Path:
    """Write a SynthPose dataset: ``output/images/*.jpg`` and ``output/annotations.json``.

    Args:
        output: folder to create (existing files of the same names are overwritten).
        num_images: number of images.
        seed: everything follows from it (image ``i`` depends only on ``seed`` and ``i``).
        size: (width, height) or ``"WxH"``.
        sequence: if > 0, frames of sequences of that many frames (figures move smoothly and keep
            ``track_id``; images carry ``vid_id`` and ``frame_id``).
        quality: JPEG quality.
        progress: show a progress bar.

    Returns:
        The path of ``annotations.json``.
    """
    import cv2
    from tqdm import tqdm

    from ..interrupt import stop_requested
    from ..media import write_image
    from .jsonio import write_json

    if num_images < 1:
        raise ValueError(f"num_images must be at least 1, got {num_images}")
    if sequence < 0:
        raise ValueError(f"sequence must be >= 0 (frames per sequence), got {sequence}")
    width, height = parse_size(size)
    out = Path(output)
    (out / "images").mkdir(parents=True, exist_ok=True)

    images, annotations = [], []
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    frames = _frames(seed, num_images, sequence, (width, height))
    for i, where, frame in tqdm(frames, total=num_images, desc="synthpose", unit="img", disable=not progress):
        if stop_requested():  # a signal (litepose.interrupt): the images so far make a whole, smaller dataset
            break
        name = f"{i:06d}.jpg"
        write_image(out / "images" / name, frame.image, params)
        entry: dict[str, Any] = {"id": i + 1, "file_name": name, "width": width, "height": height}
        if where is not None:
            entry["vid_id"], entry["frame_id"] = where[0] + 1, where[1]
        images.append(entry)
        for a in frame.annotations:
            a = dict(a, id=len(annotations) + 1, image_id=i + 1)
            if where is not None and "track_id" in a:
                a["track_id"] = where[0] * 100 + a["track_id"]  # unique over the dataset
            annotations.append(a)
    dataset = {
        "info": {
            "description": "SynthPose: synthetic multi-person keypoints (litepose)",
            "version": SYNTHPOSE_VERSION,
            "seed": int(seed),
            "size": [width, height],
            "sequence": int(sequence),
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [coco_category()],
    }
    path = write_json(out / "annotations.json", dataset)
    return path
