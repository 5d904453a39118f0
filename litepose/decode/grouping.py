"""Associative-embedding grouping: heatmaps + tags -> people.

The decoder of the original (HigherHRNet lineage), rewritten to be fast and without its two
defects. Steps, all vectorised except a loop over the joint types:

1. peaks: pixels above the detection threshold that are the maximum of their
   ``nms_kernel`` x ``nms_kernel`` window (the original's max-pool NMS), the ``max_people``
   strongest per joint;
2. grouping: joints are taken in ``grouping_order``; the first joint type with peaks founds
   one person per peak; every later peak is assigned to a person by minimum-cost matching
   (:mod:`litepose.decode.assignment`, the reference's tie-breaking) on
   ``round(||tag - person's mean tag||) * 100 - score`` and accepted when the unrounded
   distance is below ``tag_threshold``, else it founds a new person;
3. adjust: +-0.25 px toward the larger horizontal / vertical neighbour, then +0.5 px;
4. person score = mean joint score over all joints (after adjust, before refine);
5. refine: each missing joint is placed at the argmax of
   ``heatmap - round(||tag - person's mean tag||)`` when that heatmap value is positive.

Only the peaks above the threshold are ever looked at for steps 1-4, so the cost does not
grow with the image area; step 5 scans one heatmap per missing joint.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .assignment import min_cost_assignment

__all__ = ["group", "find_peaks"]


def _as_numpy(a: Any, name: str) -> np.ndarray:
    if hasattr(a, "detach"):  # torch.Tensor, without importing torch
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.dtype != np.float32:
        a = a.astype(np.float32)
    return a


@functools.lru_cache(maxsize=8)
def _window_offsets(kernel: int) -> tuple[np.ndarray, ...]:
    """Offsets of an odd square window without its centre, nearest first (they reject most)."""
    r = kernel // 2
    offs = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if (dy, dx) != (0, 0)]
    offs.sort(key=lambda o: (max(abs(o[0]), abs(o[1])), abs(o[0]) + abs(o[1])))
    near, far = offs[:4], offs[4:]
    return tuple(np.array([o[i] for o in part], np.int64) for part in (near, far) for i in (0, 1))


_DENSE_NMS_FRACTION = 0.08


def _window_max(a: np.ndarray, kernel: int) -> np.ndarray:
    """Maximum over a ``kernel`` x ``kernel`` window (edges: the window inside the map), by
    shifted maxima along each axis."""
    r = kernel // 2
    out = a.copy()
    for axis in (2, 1):
        src = out.copy()
        n = a.shape[axis]
        for k in range(1, min(r, n - 1) + 1):
            lo = [slice(None)] * 3
            hi = [slice(None)] * 3
            lo[axis], hi[axis] = slice(0, n - k), slice(k, n)
            np.maximum(out[tuple(lo)], src[tuple(hi)], out=out[tuple(lo)])
            np.maximum(out[tuple(hi)], src[tuple(lo)], out=out[tuple(hi)])
    return out


def find_peaks(
    heatmaps: np.ndarray, threshold: float, max_per_joint: int, nms_kernel: int = 5
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Local maxima above ``threshold``, the ``max_per_joint`` strongest per joint.

    Equivalent to the original's ``maxpool(x) == x`` NMS followed by top-k and the threshold
    filter, but it only visits pixels above the threshold (a separable max filter when most
    pixels are above it, as for untrained networks). Returns ``(joint, y, x, value)``
    sorted by joint, then value (descending), then raster position (ties).
    """
    _k, h, w = heatmaps.shape
    flat = heatmaps.reshape(-1)
    above = flat > threshold
    if np.count_nonzero(above[::61]) > _DENSE_NMS_FRACTION * len(above[::61]):  # (a sample) many pass:
        # a max filter is cheaper than checking each of them
        above &= flat >= _window_max(heatmaps, nms_kernel).reshape(-1)
    idx = np.flatnonzero(above)
    val = flat[idx]
    hw = h * w
    rem = idx % hw
    y = rem // w
    x = rem - y * w
    # Same-row, then same-column neighbours reject most pixels cheaply (each on the survivors
    # of the previous test); the rest of the window in one go.
    for axis, step in ((1, 1), (1, -1), (0, 1), (0, -1)):
        if idx.size == 0:
            break
        if axis == 1:
            inside = (x + step >= 0) & (x + step < w)
            nb = flat[np.where(inside, idx + step, idx)]
        else:
            inside = (y + step >= 0) & (y + step < h)
            nb = flat[np.where(inside, idx + step * w, idx)]
        ok = val >= nb
        idx, val, y, x, rem = idx[ok], val[ok], y[ok], x[ok], rem[ok]
    _ny, _nx, fy, fx = _window_offsets(nms_kernel)
    if idx.size and fy.size:
        yy = np.minimum(np.maximum(y[:, None] + fy, 0), h - 1)
        xx = np.minimum(np.maximum(x[:, None] + fx, 0), w - 1)
        ok = (val[:, None] >= flat[(idx - rem)[:, None] + yy * w + xx]).all(axis=1)
        idx, val, y, x = idx[ok], val[ok], y[ok], x[ok]
    joint = idx // hw
    order = np.lexsort((idx, -val, joint))
    joint, y, x, val = joint[order], y[order], x[order], val[order]
    if joint.size:
        starts = np.searchsorted(joint, joint, side="left")
        keep = (np.arange(joint.size) - starts) < max_per_joint
        joint, y, x, val = joint[keep], y[keep], x[keep], val[keep]
    return joint, y, x, val


class _People:
    """People found so far: the candidate index of each of their joints (-1: none) and the
    running float32 sum of their joints' tags with their count in the last column (the
    original's mean tag, same arithmetic)."""

    def __init__(self, num_joints: int, tags: np.ndarray) -> None:
        self.k, self.n, self.l = num_joints, 0, tags.shape[1]
        self.cand_tags = np.concatenate([tags, np.ones((len(tags), 1), np.float32)], axis=1)
        self.cand_tags64 = tags.astype(np.float64)
        self.member = np.full((32, num_joints), -1, np.int64)
        self.tsum = np.zeros((32, self.l + 1), np.float32)
        self.means = np.zeros((32, self.l), np.float64)

    def _grow(self, need: int) -> None:
        cap = max(2 * len(self.means), need)
        for name in ("member", "tsum", "means"):
            old = getattr(self, name)
            new = np.full((cap, *old.shape[1:]), -1 if name == "member" else 0, old.dtype)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)

    def add(self, joint: int, cand: np.ndarray | slice) -> None:
        """Found one person per candidate in ``cand`` (indices or a slice)."""
        m = len(self.cand_tags64[cand])
        if self.n + m > len(self.means):
            self._grow(self.n + m)
        s = slice(self.n, self.n + m)
        self.member[s, joint] = np.arange(cand.start, cand.stop) if isinstance(cand, slice) else cand
        self.tsum[s] = self.cand_tags[cand]
        self.means[s] = self.cand_tags64[cand]
        self.n += m

    def extend(self, ids: np.ndarray, joint: int, cand: np.ndarray) -> None:
        """Give joint ``joint`` (candidates ``cand``) to distinct people ``ids``."""
        self.member[ids, joint] = cand
        t = self.tsum[ids] + self.cand_tags[cand]
        self.tsum[ids] = t
        self.means[ids] = t[:, : self.l] / t[:, self.l :]

    def set_single(self, i: int, joint: int, c: int, restart: bool) -> None:
        """Give joint ``joint`` (candidate ``c``) to person ``i``: append its tag to the
        person's, or (the legacy merge) restart the person's tag list with it."""
        self.member[i, joint] = c
        t = self.cand_tags[c] if restart else self.tsum[i] + self.cand_tags[c]
        self.tsum[i] = t
        self.means[i] = t[: self.l] / t[self.l]


def _assign(
    people: _People,
    a: int,
    b: int,
    val64: np.ndarray,
    n_people: int,
    tag_threshold: float,
    solver: Callable[[np.ndarray], list[int]] = min_cost_assignment,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost matching of candidates ``a:b`` to the first ``n_people`` people.

    Cost and distances in float64 as the original computes them. Returns the accepted
    (candidate row, person) pairs.
    """
    if b - a == 1 and n_people <= 8:
        means = people.means[:n_people].tolist()
        return _assign_one(people.cand_tags64[a].tolist(), float(val64[a]), means, tag_threshold)
    diff = people.cand_tags64[a:b, None, :] - people.means[None, :n_people]
    dist = np.sqrt((diff * diff).sum(axis=2))
    cost = np.rint(dist) * 100.0 - val64[a:b, None]
    n = b - a
    if n > n_people:  # as the original: square up with prohibitive columns ("new person")
        cost = np.concatenate([cost, np.full((n, n - n_people), 1e10)], axis=1)
    cols = np.array(solver(cost))
    rows = np.arange(n)
    real = cols < n_people
    rows, cols = rows[real], cols[real]
    ok = dist[rows, cols] < tag_threshold
    return rows[ok], cols[ok]


def _assign_one(
    tag: list[float], val: float, means: list[list[float]], tag_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_assign` for one candidate and few people in plain Python floats (same IEEE
    float64 operations as the array version, a fraction of its call overhead)."""
    best, best_cost, best_dist = 0, math.inf, math.inf
    for p, m in enumerate(means):
        sq = 0.0
        for t, mu in zip(tag, m):
            d = t - mu
            sq += d * d
        dist = math.sqrt(sq)
        cost = round(dist) * 100.0 - val
        if cost < best_cost:
            best, best_cost, best_dist = p, cost, dist
    if best_dist < tag_threshold:
        return _ZERO, np.array([best])
    return _EMPTY, _EMPTY


_ZERO = np.zeros(1, np.int64)
_EMPTY = np.zeros(0, np.int64)


def _group_fixed(
    bounds: np.ndarray, order: tuple[int, ...], k: int, tags: np.ndarray, val64: np.ndarray, tag_threshold: float
) -> _People:
    people = _People(k, tags)
    for j in order:
        a, b = int(bounds[j]), int(bounds[j + 1])
        if a == b:
            continue
        if people.n == 0:
            people.add(j, slice(a, b))
            continue
        rows, cols = _assign(people, a, b, val64, people.n, tag_threshold)
        if b - a == 1:  # the common case, without fancy indexing
            if len(rows):
                people.set_single(int(cols[0]), j, a, restart=False)
            else:
                people.add(j, slice(a, b))
            continue
        if len(rows):
            people.extend(cols, j, rows + a)
        if len(rows) < b - a:
            new = np.ones(b - a, bool)
            new[rows] = False
            people.add(j, np.flatnonzero(new) + a)
    return people


@functools.lru_cache(maxsize=1)
def _reference_solver() -> Callable[[np.ndarray], list[int]]:
    """The assignment solver of the reference outputs: the ``munkres`` package (3.x, whose
    native kernel breaks ties its own way) when installed, else :func:`min_cost_assignment`."""
    try:
        from munkres import Munkres
    except ImportError:
        warnings.warn(
            "legacy decoding: the 'munkres' package is not installed (pip install 'litepose[legacy]'); "
            "exact ties in the matching cost may resolve differently from the original",
            stacklevel=3,
        )
        return min_cost_assignment

    def solve(cost: np.ndarray) -> list[int]:
        col = [-1] * cost.shape[0]
        for r, c in Munkres().compute(cost):
            col[r] = c
        return col

    return solve


def _group_legacy(
    bounds: np.ndarray,
    order: tuple[int, ...],
    k: int,
    tags: np.ndarray,
    val64: np.ndarray,
    tag_threshold: float,
    max_people: int,
) -> _People:
    """The original's matching, defects included: people are keyed by the first tag value of
    their founding joint (equal keys merge) and only the first ``max_people`` people found are
    candidates for matching (crowds fragment)."""
    people = _People(k, tags)
    keys: dict[float, int] = {}
    solver = _reference_solver()

    def found(j: int, c: int) -> None:
        key = float(tags[c, 0])
        i = keys.get(key)
        if i is None:
            keys[key] = people.n
            people.add(j, slice(c, c + 1))
        else:  # the defect: overwrite that person's joint and restart its tag list
            people.set_single(i, j, c, restart=True)

    for j in order:
        a, b = int(bounds[j]), int(bounds[j + 1])
        if a == b:
            continue
        if people.n == 0:
            for c in range(a, b):
                found(j, c)
            continue
        rows, cols = _assign(people, a, b, val64, min(people.n, max_people), tag_threshold, solver)
        person = dict(zip(rows.tolist(), cols.tolist()))
        for r in range(b - a):
            i = person.get(r)
            if i is None:
                found(j, a + r)
            else:
                people.set_single(i, j, a + r, restart=False)
    return people


def _quarter_offsets(det: np.ndarray, k: np.ndarray, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """+-0.25 toward the larger horizontal / vertical neighbour (edges clamped)."""
    h, w = det.shape[1:]
    right = det[k, y, np.minimum(x + 1, w - 1)]
    left = det[k, y, np.maximum(x - 1, 0)]
    down = det[k, np.minimum(y + 1, h - 1), x]
    up = det[k, np.maximum(y - 1, 0), x]
    return np.where(right > left, 0.25, -0.25), np.where(down > up, 0.25, -0.25)


@functools.lru_cache(maxsize=256)
def _rounded_sqrt_bound(k: int) -> np.float32:
    """Largest float32 ``s`` with ``rint(sqrt(s)) <= k`` (float32 arithmetic, half to even).

    ``rint(sqrt(s))`` is monotone in ``s``, so ``s <= bound`` is exactly ``rint(sqrt(s)) <= k``.
    """

    def ok(v: np.float32) -> bool:
        return bool(np.rint(np.sqrt(v)) <= k)

    inf = np.float32(np.inf)
    b = np.float32((k + 0.5) ** 2)
    if ok(b):
        while ok(np.nextafter(b, inf)):
            b = np.nextafter(b, inf)
    else:
        while not ok(b):
            b = np.nextafter(b, np.float32(0))
    return b


def _squared_tag_distance(tj: np.ndarray, m: np.ndarray) -> np.ndarray:
    """(n, H, W) float32 ``sum_c (tj[..., c] - m[i, c])^2`` for n mean tags ``m`` (n, L): the
    original's float32 operations in its order, for channel-last or planar-backed ``tj``."""
    h, w, l_ = tj.shape
    n = len(m)
    if l_ == 1 or tj.strides[2] != tj.itemsize:  # planar-backed (or a single channel)
        s = tj[None, :, :, 0] - m[:, 0, None, None]
        np.multiply(s, s, out=s)
        if l_ > 1:
            d = np.empty_like(s)
            for c in range(1, l_):
                np.subtract(tj[None, :, :, c], m[:, c, None, None], out=d)
                np.multiply(d, d, out=d)
                np.add(s, d, out=s)
        return s
    # (H, W*L) - (W*L,): a long contiguous inner loop instead of broadcasting over L
    d3 = tj.reshape(1, h, w * l_) - np.tile(m, (1, w))[:, None, :]
    np.multiply(d3, d3, out=d3)
    d3 = d3.reshape(n, h, w, l_)
    s = d3[..., 0] + d3[..., 1]
    for c in range(2, l_):
        np.add(s, d3[..., c], out=s)
    return s


_TOP_FRACTION = 0.02


def _search_dense(dj: np.ndarray, tj: np.ndarray, means: np.ndarray) -> np.ndarray:
    """First argmax (flat index) of ``dj - round(||tj - m||)`` for each mean tag ``m``.

    Exact without rounding every distance: ``r = round(distance)`` is at least ``r_min``
    everywhere. The best heatmap value ``v0`` among pixels at ``r_min`` (found from the
    squared distances against an exact float32 bound, no square root) scores ``v0 - r_min``;
    any other pixel scores at most ``max - r``, so only pixels with
    ``r <= r_min + floor(max - v0)`` can win. Usually that is ``r_min`` alone (heatmap values
    span less than 1) and the answer is already known.
    """
    h, w, l_ = tj.shape
    d = dj.reshape(-1)
    out = np.full(len(means), -1, np.int64)
    sample = np.sort(d[:: max(1, d.size // 1024)])
    t = sample[int(len(sample) * (1.0 - _TOP_FRACTION))]
    cand = np.flatnonzero(d >= t)  # ascending: first argmax = first in raster order
    if cand.size <= 5 * _TOP_FRACTION * d.size:  # (not a plateau)
        # Score everyone on the pixels with the highest heatmap values (>= t, about the top
        # 2%, t taken from a sample) first. A score never exceeds the heatmap value, so a best
        # score >= t there cannot be matched by any other pixel.
        tc = [tj[:, :, c].reshape(-1)[cand] for c in range(l_)]  # one plane at a time: fast
        sq = tc[0][None] - means[:, 0, None]
        sq *= sq
        for c in range(1, l_):
            dc = tc[c][None] - means[:, c, None]
            dc *= dc
            sq += dc
        f = d[cand][None] - np.rint(np.sqrt(sq))
        k = f.argmax(axis=1)
        ok = f[np.arange(len(means)), k] >= t
        out[ok] = cand[k[ok]]
        if ok.all():
            return out
    todo = np.flatnonzero(out < 0)
    means = means[todo]
    dmax = float(d.max())
    interleaved = l_ > 1 and tj.strides[1] == tj.itemsize * l_ and tj.strides[0] == tj.strides[1] * w
    if interleaved and len(means) > 1:  # channel-last, several people: one planar copy
        planes, interleaved = list(np.ascontiguousarray(np.moveaxis(tj, 2, 0))), False
    else:
        planes = [tj[:, :, c] for c in range(l_)]
    s = np.empty((h, w), np.float32)
    tmp = np.empty((h, w) if not interleaved else (h, w * l_), np.float32)
    flat = s.reshape(-1)
    for i, m in zip(todo, means):
        # the original's float32 operations, in its order: sum over c of (t_c - m_c)^2
        if interleaved:  # (H, W*L) - (W*L,): long contiguous loops, then the channel sum
            np.subtract(tj.reshape(h, w * l_), np.tile(m, w), out=tmp)
            np.multiply(tmp, tmp, out=tmp)
            t3 = tmp.reshape(h, w, l_)
            np.add(t3[:, :, 0], t3[:, :, 1], out=s)
            for c in range(2, l_):
                np.add(s, t3[:, :, c], out=s)
        else:
            np.subtract(planes[0], m[0], out=s)
            np.multiply(s, s, out=s)
            for c in range(1, l_):
                np.subtract(planes[c], m[c], out=tmp)
                np.multiply(tmp, tmp, out=tmp)
                np.add(s, tmp, out=s)
        r_min = 0
        idx = np.flatnonzero(flat <= _rounded_sqrt_bound(0))
        if idx.size == 0:
            r_min = int(np.rint(np.sqrt(flat.min())))
            idx = np.flatnonzero(flat <= _rounded_sqrt_bound(r_min))
        v = d[idx]
        k = int(v.argmax())
        best, v0 = int(idx[k]), float(v[k])
        # (a small margin: float32 scores of nearly equal values may round to a tie)
        extra = int(np.floor(dmax - v0 + 1e-4))
        if extra >= 1:  # a pixel farther in tag space may still win: score all close enough
            cand = np.flatnonzero(flat <= _rounded_sqrt_bound(r_min + extra))
            f = d[cand] - np.rint(np.sqrt(flat[cand]))
            best = int(cand[f.argmax()])
        out[i] = best
    return out


def _refine(det: np.ndarray, tags: np.ndarray, kpts: np.ndarray) -> None:
    """Fill missing joints (score 0) in place: the first argmax of
    ``heatmap - round(distance of the tag to the person's mean tag)``, kept where the heatmap
    value there is positive (the original's refine; ties go to the first pixel in raster order)."""
    _p, k_, _ = kpts.shape
    w = det.shape[2]
    present = kpts[:, :, 2] > 0
    if present.all():
        return
    pp, kk = np.nonzero(present)
    xi = kpts[pp, kk, 0].astype(np.int32)
    yi = kpts[pp, kk, 1].astype(np.int32)
    t = tags[kk, yi, xi]  # (n, L)
    sums = np.zeros((len(kpts), tags.shape[3]), np.float32)
    np.add.at(sums, pp, t)
    means = sums / present.sum(1).astype(np.float32)[:, None]
    for j in range(k_):
        ids = np.flatnonzero(~present[:, j])
        if ids.size == 0:
            continue
        dj = det[j]
        tj = tags[j]
        if tj.strides[2] != tj.itemsize and tj.strides[1] != tj.itemsize:
            tj = np.ascontiguousarray(tj)
        best = _search_dense(dj, tj, means[ids])
        v = dj.reshape(-1)[best]
        good = v > 0
        if not good.any():
            continue
        ids, best, v = ids[good], best[good], v[good]
        by, bx = best // w, best % w
        ox, oy = _quarter_offsets(det, np.full(len(ids), j), by, bx)
        kpts[ids, j, 0] = bx + 0.5 + ox
        kpts[ids, j, 1] = by + 0.5 + oy
        kpts[ids, j, 2] = v


def group(
    heatmaps: Any,
    tags: Any,
    *,
    detection_threshold: float = 0.1,
    tag_threshold: float = 1.0,
    max_people: int = 30,
    nms_kernel: int = 5,
    adjust: bool = True,
    refine: bool = True,
    legacy: bool = False,
    grouping_order: tuple[int, ...] | list[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Group joint heatmaps and associative-embedding tags into people.

    Args:
        heatmaps: (K, H, W) (or (1, K, H, W)) numpy array or tensor.
        tags: (K, H, W, L) or (K, H, W) (or with a leading 1), numpy array or tensor.
        detection_threshold: peaks must be above it.
        tag_threshold: largest tag distance at which a joint joins a person.
        max_people: peaks kept per joint, and the most people returned (highest score first).
        nms_kernel: odd window of the peak test.
        adjust / refine: sub-pixel quarter offset, and filling of missing joints.
        legacy: reproduce the original exactly, defects included (people keyed by tag value,
            only the first ``max_people`` people matched, every person returned in order found).
        grouping_order: order of joint types; default: the keypoint set for K.

    Returns:
        ``keypoints`` (P, K, 3) float32 = (x, y, score) in heatmap pixels (pixel centres at
        +0.5, the original's convention), and ``scores`` (P,) float32.
    """
    det = _as_numpy(heatmaps, "heatmaps")
    tag = _as_numpy(tags, "tags")
    if det.ndim == 4 and det.shape[0] == 1:
        det = det[0]
    if tag.ndim == 5 and tag.shape[0] == 1:
        tag = tag[0]
    if det.ndim != 3:
        raise ValueError(f"heatmaps must be (K, H, W), got shape {det.shape}")
    if tag.ndim == 3:
        tag = tag[..., None]
    if tag.ndim != 4 or tag.shape[:3] != det.shape:
        raise ValueError(f"tags must be (K, H, W, L) matching heatmaps {det.shape}, got shape {tag.shape}")
    if nms_kernel < 1 or nms_kernel % 2 == 0:
        raise ValueError(f"nms_kernel must be a positive odd number, got {nms_kernel}")
    if detection_threshold < 0:
        raise ValueError(f"detection_threshold must be >= 0, got {detection_threshold}")
    if max_people < 1:
        raise ValueError(f"max_people must be positive, got {max_people}")
    det = np.ascontiguousarray(det)
    k_ = det.shape[0]
    if grouping_order is None:
        from ..data.keypoints import keypoint_set_for

        order = tuple(keypoint_set_for(k_).grouping_order)
    else:
        order = tuple(int(i) for i in grouping_order)
        if sorted(order) != list(range(k_)):
            raise ValueError(f"grouping_order must be a permutation of 0..{k_ - 1}, got {list(order)}")

    joint, y, x, val = find_peaks(det, detection_threshold, max_people, nms_kernel)
    cand_tags = np.ascontiguousarray(tag[joint, y, x])  # any strides of `tag`, no copy of the map
    bounds = np.searchsorted(joint, np.arange(k_ + 1))
    val64 = val.astype(np.float64)
    if legacy:
        people = _group_legacy(bounds, order, k_, cand_tags, val64, tag_threshold, max_people)
    else:
        people = _group_fixed(bounds, order, k_, cand_tags, val64, tag_threshold)

    n = people.n
    member = people.member[:n]
    has = member >= 0
    c = np.where(has, member, 0)
    kpts = np.zeros((n, k_, 3), np.float32)
    if n:
        xi, yi = np.where(has, x[c], 0), np.where(has, y[c], 0)
        kpts[:, :, 0], kpts[:, :, 1], kpts[:, :, 2] = xi, yi, np.where(has, val[c], 0)
        if adjust:
            pp, kk = np.nonzero(has)
            ox, oy = _quarter_offsets(det, kk, yi[pp, kk], xi[pp, kk])
            kpts[pp, kk, 0] += 0.5 + ox
            kpts[pp, kk, 1] += 0.5 + oy
    scores = kpts[:, :, 2].mean(axis=1) if n else np.zeros(0, np.float32)
    if not legacy and n:
        keep = np.argsort(-scores, kind="stable")[:max_people]
        kpts, scores = kpts[keep], scores[keep]
    if refine and len(kpts):
        _refine(det, tag, kpts)
    return kpts, scores.astype(np.float32)
