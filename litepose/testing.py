"""Helpers for tests and benchmarks (litepose itself never imports this module).

Synthetic heatmaps + tags with known people, for decoder tests and benchmarks.

Made like the reference decoder fixtures: each visible joint is a Gaussian blob
(``amp * exp(-d^2 / 2 sigma^2)``, joints of one type combined by max) over uniform background
noise; tags are uniform noise except within ``2 sigma`` of a visible joint, where they are the
person's tag plus Gaussian noise (channels after the first get a small per-joint offset, as
the flipped tags of flip test do).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SyntheticMaps", "synthetic_maps", "grid_centers"]

# A standing person facing the camera, in units of its height, relative to its centre
# (COCO joint order; the person's left is on the image's right).
_TEMPLATE_17 = np.array(
    [
        (0.00, -0.42), (0.03, -0.45), (-0.03, -0.45), (0.07, -0.43), (-0.07, -0.43),
        (0.13, -0.30), (-0.13, -0.30), (0.18, -0.12), (-0.18, -0.12), (0.20, 0.03), (-0.20, 0.03),
        (0.09, 0.05), (-0.09, 0.05), (0.10, 0.27), (-0.10, 0.27), (0.10, 0.48), (-0.10, 0.48),
    ]
)  # fmt: skip


def _template(num_joints: int) -> np.ndarray:
    if num_joints == 17:
        return _TEMPLATE_17
    a = np.linspace(0, 2 * np.pi, num_joints, endpoint=False)
    return np.stack([0.2 * np.cos(a), 0.45 * np.sin(a)], axis=1)


@dataclass
class SyntheticMaps:
    heatmaps: np.ndarray  # (K, H, W) float32
    tags: np.ndarray  # (K, H, W, L) float32
    joints: np.ndarray  # (P, K, 3) float64: x, y (pixels, centre convention +0.5), visible
    person_tags: np.ndarray  # (P,) float64


def grid_centers(rows: int, cols: int, height: int, width: int) -> np.ndarray:
    """Centres of a rows x cols grid of cells covering the map, (rows*cols, 2) as (x, y)."""
    ys = (np.arange(rows) + 0.5) * height / rows
    xs = (np.arange(cols) + 0.5) * width / cols
    return np.array([(x, y) for y in ys for x in xs])


def synthetic_maps(
    num_people: int,
    height: int = 128,
    width: int = 128,
    *,
    num_joints: int = 17,
    tag_dims: int = 2,
    missing_per_person: int = 0,
    sigma: float = 2.0,
    noise: float = 0.05,
    amp: tuple[float, float] = (0.35, 1.0),
    person_height: tuple[float, float] = (24.0, 60.0),
    centers: np.ndarray | None = None,
    person_tags: np.ndarray | None = None,
    tag_sep: float = 1.5,
    tag_noise: float = 0.05,
    seed: int = 0,
) -> SyntheticMaps:
    """People at random (or given) centres with random heights; see the module docstring."""
    rng = np.random.default_rng(seed)
    k, l_ = num_joints, tag_dims
    heat = rng.uniform(0.0, noise, (k, height, width)).astype(np.float32) if noise > 0 else None
    if heat is None:
        heat = np.zeros((k, height, width), np.float32)
    if person_tags is None:
        person_tags = rng.permutation(num_people) * tag_sep + rng.uniform(-0.2, 0.2)
    person_tags = np.asarray(person_tags, np.float64)
    lo, hi = person_tags.min(initial=0.0) - 2.0, person_tags.max(initial=0.0) + 2.0
    tags = rng.uniform(lo, hi, (k, height, width, l_)).astype(np.float32)
    if centers is None:
        centers = np.stack(
            [rng.uniform(0.15 * width, 0.85 * width, num_people), rng.uniform(0.3 * height, 0.7 * height, num_people)],
            axis=1,
        )
    template = _template(k)
    joints = np.zeros((num_people, k, 3))
    offsets = 0.02 * rng.standard_normal((k, l_))
    offsets[:, 0] = 0.0
    rad = int(np.ceil(6 * sigma))
    yy, xx = np.mgrid[-rad : rad + 1, -rad : rad + 1]
    for p in range(num_people):
        h = rng.uniform(*person_height)
        pts = np.asarray(centers[p], np.float64) + template * h
        visible = np.ones(k, bool)
        if missing_per_person:
            visible[rng.choice(k, missing_per_person, replace=False)] = False
        amps = rng.uniform(*amp, k)
        for j in range(k):
            # integer blob centre: the decoder's pixel-centre convention puts it at +0.5
            cx, cy = int(round(pts[j, 0])), int(round(pts[j, 1]))
            inside = 0 <= cx < width and 0 <= cy < height
            joints[p, j] = (cx + 0.5, cy + 0.5, float(visible[j] and inside))
            if not (visible[j] and inside):
                continue
            y0, y1 = max(cy - rad, 0), min(cy + rad + 1, height)
            x0, x1 = max(cx - rad, 0), min(cx + rad + 1, width)
            d2 = (yy**2 + xx**2)[y0 - cy + rad : y1 - cy + rad, x0 - cx + rad : x1 - cx + rad]
            blob = (amps[j] * np.exp(-d2 / (2 * sigma**2))).astype(np.float32)
            np.maximum(heat[j, y0:y1, x0:x1], blob, out=heat[j, y0:y1, x0:x1])
            near = d2 <= (2 * sigma) ** 2
            region = tags[j, y0:y1, x0:x1]
            vals = person_tags[p] + offsets[j] + tag_noise * rng.standard_normal((int(near.sum()), l_))
            region[near] = vals.astype(np.float32)
    return SyntheticMaps(heat, tags, joints, person_tags)
