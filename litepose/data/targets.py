"""Training targets: Gaussian keypoint heatmaps and the joint index table of the embedding loss.

Both take joints ``(P, K, 3)`` = (x, y, v) in output-resolution pixels, already transformed.
The conventions are the original's (HigherHRNet / LitePose target generators):

- A joint is *used* iff ``v > 0`` and ``0 <= int(x) < R`` and ``0 <= int(y) < R``; ``int``
  truncates toward zero (a joint at x = -0.5 lands in column 0) and drops the fraction.
- :func:`render_heatmaps`: every used joint pastes the original's ``(6*sigma+3)^2`` Gaussian patch
  centred at pixel ``(int(y), int(x))`` (for non-integer sigma the centre is shifted by the
  original's ``np.round``); overlapping patches of one joint type combine by max. Equal to
  the original bit for bit; vectorised (one scatter-max for all joints).
- :func:`joints_table`: ``(max_people, K, 2)`` int64; a row per person, its used joints packed into
  slots ``0..n-1`` in joint order as ``(k*R*R + int(y)*R + int(x), 1)``, unused slots ``(0, 0)``.

Where litepose differs from the original table (``legacy=False``, the default):

- People without a used joint take no row (the original leaves a zero row for each, which
  pushes later people out of the table).
- More than ``max_people`` people never crash (the original raises IndexError when person 30
  has a used joint): the ``max_people`` people with the most used joints are kept (ties: the
  earlier person), in input order. Heatmaps always include everyone.

``legacy=True`` reproduces the original rows (row i = input person i) for people 0..max_people-1
and silently drops the rest instead of raising.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["render_heatmaps", "joints_table", "used_joints", "gaussian_patch"]


@lru_cache(maxsize=16)
def gaussian_patch(sigma: float) -> np.ndarray:
    """The original's ``(6*sigma+3)`` square float64 Gaussian patch (peak at index ``3*sigma+1``)."""
    size = 6 * sigma + 3
    x = np.arange(0, size, 1, float)
    y = x[:, None]
    c = 3 * sigma + 1
    g = np.exp(-((x - c) ** 2 + (y - c) ** 2) / (2 * sigma**2))
    g.flags.writeable = False
    return g


def used_joints(joints: np.ndarray, res: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(used (P, K) bool, ix (P, K) int64, iy (P, K) int64)`` under the original's rule."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[-1] < 3:
        raise ValueError(f"joints must be (P, K, 3), got {joints.shape}")
    tx = np.trunc(joints[..., 0])
    ty = np.trunc(joints[..., 1])
    used = (joints[..., 2] > 0) & (tx >= 0) & (ty >= 0) & (tx < res) & (ty < res)
    ix = np.where(used, tx, 0).astype(np.int64)
    iy = np.where(used, ty, 0).astype(np.int64)
    return used, ix, iy


def render_heatmaps(joints: np.ndarray, res: int, sigma: float = 2.0, num_joints: int | None = None) -> np.ndarray:
    """(K, res, res) float32 heatmaps of ``joints`` (P, K, 3) at output resolution ``res``."""
    joints = np.asarray(joints, dtype=np.float64)
    k = joints.shape[1] if num_joints is None else num_joints
    hms = np.zeros(k * res * res, dtype=np.float32)
    if joints.size == 0:
        return hms.reshape(k, res, res)
    used, ix, iy = used_joints(joints, res)
    _, jk = np.nonzero(used)
    x, y = ix[used], iy[used]
    if x.size == 0:
        return hms.reshape(k, res, res)
    g = gaussian_patch(float(sigma))
    size = g.shape[0]
    r = 3 * sigma
    # Patch origin and end as the original computes them (np.round: half to even).
    ul_x = np.round(x - r - 1).astype(np.int64)
    ul_y = np.round(y - r - 1).astype(np.int64)
    br_x = np.minimum(np.round(x + r + 2).astype(np.int64), res)
    br_y = np.minimum(np.round(y + r + 2).astype(np.int64), res)
    off = np.arange(size)
    cols = ul_x[:, None] + off  # (N, S)
    rows = ul_y[:, None] + off
    ok_c = (cols >= 0) & (cols < br_x[:, None])
    ok_r = (rows >= 0) & (rows < br_y[:, None])
    ok = ok_r[:, :, None] & ok_c[:, None, :]  # (N, S, S)
    flat = (jk[:, None, None] * res + rows[:, :, None]) * res + cols[:, None, :]
    vals = np.broadcast_to(g.astype(np.float32), ok.shape)
    np.maximum.at(hms, flat[ok], vals[ok])
    return hms.reshape(k, res, res)


def joints_table(joints: np.ndarray, res: int, max_people: int = 30, legacy: bool = False) -> np.ndarray:
    """(max_people, K, 2) int64 joint index table of ``joints`` (P, K, 3) at resolution ``res``."""
    joints = np.asarray(joints, dtype=np.float64)
    p, k = joints.shape[:2]
    table = np.zeros((max_people, k, 2), dtype=np.int64)
    if p == 0:
        return table
    used, ix, iy = used_joints(joints, res)
    if legacy:
        people = np.arange(min(p, max_people))
    else:
        count = used.sum(1)
        people = np.flatnonzero(count > 0)
        if people.size > max_people:
            best = np.argsort(-count[people], kind="stable")[:max_people]
            people = np.sort(people[best])
    u = used[people]
    slot = np.cumsum(u, axis=1) - 1
    row = np.broadcast_to(np.arange(len(people))[:, None], u.shape)
    index = np.arange(k)[None, :] * res * res + iy[people] * res + ix[people]
    table[row[u], slot[u], 0] = index[u]
    table[row[u], slot[u], 1] = 1
    return table
