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
3. adjust: +-0.25 px toward the larger horizontal / vertical neighbour, then +0.5 px
   (``subpixel="quarter"``, the original's); or ``subpixel="parabola"``: the vertex of the
   parabola through the log heatmap at the peak and its two neighbours on each axis, within
   +-0.49 px, none along an axis where the peak is on the map's border (the fast chain, which
   groups at the network's output resolution where a quarter step is half an input pixel);
4. person score = mean joint score over all joints (after adjust, before refine);
5. refine: each missing joint is placed at the argmax of
   ``heatmap - round(||tag - person's mean tag||)`` when that heatmap value is positive.

Only the peaks above the threshold are ever looked at for steps 1-4, so the cost does not
grow with the image area; step 5 scans one heatmap per missing joint.

The peak window test, step 2 (all joint types in one call; SciPy's solver, for matrices wider
than 30 columns, called back from Python) and refine's search run compiled where the kernel
library is available (:mod:`litepose.decode._native`), with the same operations, so the same
people; the Python versions here run otherwise. With ``threads`` > 1, the compiled peak search
and refine's searches run split by joint over that many threads (the kernels release the GIL;
each joint's search is independent, so the people are the same).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..data.keypoints import keypoint_set_for
from ._native import kernel
from ._threads import MAX_THREADS, even_ranges, in_threads
from .assignment import min_cost_assignment, wide_assignment

__all__ = ["group", "find_peaks"]


def _as_numpy(a: Any, name: str) -> np.ndarray:
    if hasattr(a, "detach"):  # torch.Tensor, without importing torch
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.dtype != np.float32:
        a = a.astype(np.float32)
    return a


@functools.lru_cache(maxsize=8)
def _far_offsets(kernel: int) -> tuple[np.ndarray, np.ndarray]:
    """(dy, dx) of an odd square window without its centre and its 4 nearest neighbours (those
    are tested first, on their own), nearest first."""
    r = kernel // 2
    offs = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if abs(dy) + abs(dx) > 1]
    offs.sort(key=lambda o: (max(abs(o[0]), abs(o[1])), abs(o[0]) + abs(o[1])))
    return np.array([o[0] for o in offs], np.int64), np.array([o[1] for o in offs], np.int64)


_ZERO = np.zeros(1, np.int64)


def _run_starts(a: np.ndarray) -> np.ndarray:
    """Start index of each run of equal values in a non-empty 1-d array."""
    starts = np.flatnonzero(a[1:] != a[:-1])
    starts += 1
    return np.concatenate([_ZERO, starts])


def _top_floor(val: np.ndarray, starts: list[int], top: int) -> np.ndarray:
    """Per element of runs ``starts`` of ``val``: the ``top``-th largest value of its run
    (-inf for runs of at most ``top``), so ``val >= floor`` keeps each run's ``top`` strongest
    and their ties."""
    floor = np.full(val.size, -np.inf, np.float32)
    for a, b in zip(starts, starts[1:] + [val.size]):
        if b - a > top:
            floor[a:b] = np.partition(val[a:b], b - a - top)[b - a - top]
    return floor


_DENSE_NMS_FRACTION = 0.08
_MANY = 4096  # candidates from which the window test starts with the strongest per joint


@functools.lru_cache(maxsize=16)
def _default_order(num_joints: int) -> tuple[int, ...]:
    return tuple(keypoint_set_for(num_joints).grouping_order)


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


def _window_clear(
    flat: np.ndarray, idx: np.ndarray, val: np.ndarray, h: int, w: int, fy: np.ndarray, fx: np.ndarray
) -> np.ndarray:
    """Whether each pixel ``idx`` of the flattened (K, H, W) maps is >= its window neighbours at
    offsets ``(fy, fx)`` (edges: the window inside the map)."""
    rem = idx % (h * w)
    y = rem // w
    x = rem - y * w
    yy = np.minimum(np.maximum(y[:, None] + fy, 0), h - 1)
    xx = np.minimum(np.maximum(x[:, None] + fx, 0), w - 1)
    return (val[:, None] >= flat[(idx - rem)[:, None] + yy * w + xx]).all(axis=1)


def _candidates(
    heatmaps: np.ndarray, flat: np.ndarray, threshold: float, nms_kernel: int
) -> tuple[np.ndarray, bool, bool]:
    """Flat indices (raster order) of the pixels above ``threshold`` that :func:`find_peaks` must
    test, and whether the same-row / same-column test (``near_done``) and the rest of the
    window test (``far_done``) are already done on them."""
    above = flat > threshold
    # Pixels above the threshold, found through 8-pixel words of the mask when few words are
    # non-zero: scanning those is much cheaper than scanning every pixel.
    n8 = flat.size - flat.size % 8
    words = np.flatnonzero(above[:n8].view(np.uint64) != 0)
    near_done = far_done = nms_kernel == 1  # (a 1x1 window: every pixel is its own maximum)
    if (
        not far_done
        and words.size > _DENSE_NMS_FRACTION * (n8 // 8)
        and np.count_nonzero(above) > _DENSE_NMS_FRACTION * flat.size
    ):
        # many pass (broad responses): keep the local maxima along rows and columns, with
        # whole-map comparisons; a max filter when that leaves too many (an untrained network)
        keep = above.reshape(heatmaps.shape)
        scratch = np.empty(flat.size, bool)  # one buffer for the four comparisons
        for a, b in (
            ((..., slice(1, None)), (..., slice(None, -1))),
            ((slice(None), slice(1, None)), (slice(None), slice(None, -1))),
        ):
            for lo, hi in ((a, b), (b, a)):
                ge = scratch[: keep[lo].size].reshape(keep[lo].shape)
                np.greater_equal(heatmaps[lo], heatmaps[hi], out=ge)
                keep[lo] &= ge
        near_done = True
        if np.count_nonzero(above) > _DENSE_NMS_FRACTION * flat.size:
            above &= flat >= _window_max(heatmaps, nms_kernel).reshape(-1)
            far_done = True
        idx = np.flatnonzero(above)
    elif words.size * 32 > n8 // 8:
        idx = np.flatnonzero(above)
    else:
        fi = np.flatnonzero(above[:n8].reshape(-1, 8)[words])
        idx = words[fi >> 3] * 8 + (fi & 7)
        if n8 < flat.size:
            idx = np.concatenate([idx, np.flatnonzero(above[n8:]) + n8])
    return idx, near_done, far_done


def find_peaks(
    heatmaps: np.ndarray, threshold: float, max_per_joint: int, nms_kernel: int = 5, threads: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Local maxima above ``threshold``, the ``max_per_joint`` strongest per joint.

    Equivalent to the original's ``maxpool(x) == x`` NMS followed by top-k and the threshold
    filter, but it only visits pixels above the threshold (and row-wise local maxima, or a
    separable max filter, when many pixels are above it). Returns ``(joint, y, x, value)``
    sorted by joint, then value (descending), then raster position (ties). ``threads`` > 1: the
    compiled search takes the joints in that many ranges at once (the same peaks).
    """
    k, h, w = heatmaps.shape
    flat = heatmaps.reshape(-1)
    fn = kernel("litepose_peaks")
    if fn is not None and flat.dtype == np.float32 and flat.flags.c_contiguous and max_per_joint >= 1:
        hw = h * w

        def search(joints: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
            a, b = joints  # the whole search compiled for joints a..b, top-k and order included
            room = min((b - a) * max_per_joint, (b - a) * hw)
            out = np.empty((3, room), np.int64), np.empty(room, np.float32)
            ptrs = [out[0][i].ctypes.data for i in range(3)]
            n = fn(flat[a * hw :].ctypes.data, b - a, h, w, threshold, nms_kernel, max_per_joint, *ptrs,
                   out[1].ctypes.data)  # fmt: skip
            if n < 0:
                return None
            out[0][0, :n] += a
            return out[0][:, :n], out[1][:n]

        found = in_threads(search, even_ranges(k, int(threads)))
        if all(f is not None for f in found):
            ids = found[0][0] if len(found) == 1 else np.concatenate([f[0] for f in found], axis=1)
            val = found[0][1] if len(found) == 1 else np.concatenate([f[1] for f in found])
            return ids[0], ids[1], ids[2], val
    idx, near_done, far_done = _candidates(heatmaps, flat, threshold, nms_kernel)
    val = flat[idx]
    hw = h * w
    if not near_done and idx.size:
        # Same-row neighbours reject most pixels cheaply, then same-column ones (each on the
        # survivors of the previous test); the rest of the window after them.
        x = idx % w
        ok = (val >= flat.take(idx + 1, mode="clip")) | (x == w - 1)
        ok &= (val >= flat.take(idx - 1, mode="clip")) | (x == 0)
        idx, val = idx[ok], val[ok]
        rem = idx % hw
        ok = (val >= flat.take(idx + w, mode="clip")) | (rem >= hw - w)
        ok &= (val >= flat.take(idx - w, mode="clip")) | (rem < w)
        idx, val = idx[ok], val[ok]
    fy, fx = _far_offsets(nms_kernel)
    if not far_done and fy.size and idx.size > _MANY:
        # many: test the strongest few per joint first; a joint is done when enough pass
        # (a peak left untested is weaker than all of them), else test the rest of it
        starts = _run_starts(idx // hw).tolist()
        first = val >= _top_floor(val, starts, 4 * max_per_joint)
        ok = np.zeros(idx.size, bool)
        sel = np.flatnonzero(first)
        ok[sel] = _window_clear(flat, idx[sel], val[sel], h, w, fy, fx)
        passed = np.add.reduceat(ok, starts, dtype=np.int64).tolist()
        ends = starts[1:] + [idx.size]
        rest = [np.arange(a, b) for a, b, n in zip(starts, ends, passed) if n < max_per_joint]
        if rest:
            sel = np.concatenate(rest)
            sel = sel[~first[sel]]
            ok[sel] = _window_clear(flat, idx[sel], val[sel], h, w, fy, fx)
        idx, val = idx[ok], val[ok]
    elif not far_done and fy.size and idx.size:
        ok = _window_clear(flat, idx, val, h, w, fy, fx)
        idx, val = idx[ok], val[ok]
    joint = idx // hw
    if joint.size > 4 * max_per_joint:  # drop what cannot be among the strongest of its joint
        ok = val >= _top_floor(val, _run_starts(joint).tolist(), max_per_joint)
        idx, val, joint = idx[ok], val[ok], joint[ok]
    order = np.lexsort((idx, -val, joint))
    idx, val, joint = idx[order], val[order], joint[order]
    if joint.size:
        starts = np.searchsorted(joint, joint, side="left")
        keep = (np.arange(joint.size) - starts) < max_per_joint
        idx, val, joint = idx[keep], val[keep], joint[keep]
    rem = idx - joint * hw
    y = rem // w
    x = rem - y * w
    return joint, y, x, val


class _People:
    """People found so far: the candidate index of each of their joints (-1: none), the float32
    running sum of their joints' tags with its count, and the resulting mean tag (the original's
    ``np.mean`` of the tag list: the same float32 operations, in the same order). Arrays sized for
    the most people there can be (one per candidate); the first ``n`` rows are used."""

    __slots__ = ("n", "tags", "tags64", "tag_list", "member", "tsum", "count", "means")

    def __init__(self, num_joints: int, cand_tags: np.ndarray) -> None:
        self.n = 0
        self.tags = cand_tags  # (candidates, L) float32
        self.tags64 = cand_tags.astype(np.float64)
        self.tag_list: list[list[float]] = cand_tags.tolist()  # exact float32 values
        self.member = np.full((len(cand_tags), num_joints), -1, np.int64)
        self.tsum = np.zeros(cand_tags.shape, np.float32)
        self.count = np.zeros(len(cand_tags), np.float32)  # (exact: small integers)
        self.means = np.zeros(cand_tags.shape, np.float32)

    def found(self, joint: int, cs: np.ndarray) -> None:
        """New people, one per candidate of ``cs`` in that order, whose first joint is ``joint``."""
        i = slice(self.n, self.n + len(cs))
        self.member[i, joint] = cs
        self.tsum[i] = self.means[i] = self.tags[cs]
        self.count[i] = 1
        self.n += len(cs)

    def join(self, joint: int, cs: np.ndarray, ps: np.ndarray, restart: bool = False) -> None:
        """Give joint ``joint`` of candidates ``cs`` to people ``ps`` (all different): add each
        tag to the person's sum, or (the legacy merge) restart the person's sum with it."""
        self.member[ps, joint] = cs
        if restart:
            self.tsum[ps] = self.tags[cs]
            self.count[ps] = 1
        else:
            self.tsum[ps] += self.tags[cs]  # float32 sums
            self.count[ps] += 1
        self.means[ps] = self.tsum[ps] / self.count[ps, None]  # float32 division, as np.mean


_SMALL = 16  # candidates x people up to which the costs are computed in Python floats


def _match(
    people: _People,
    a: int,
    b: int,
    vals: list[float],
    n_people: int,
    tag_threshold: float,
    solver: Callable[[Any], list[int]] = min_cost_assignment,
    finite: bool = True,
) -> list[tuple[int, int]]:
    """Minimum-cost matching of candidates ``a:b`` to the first ``n_people`` people.

    Cost ``round(distance) * 100 - score`` and distances in float64 as the original computes
    them (the same IEEE operations in Python floats for small problems). Returns the accepted
    (candidate, person) pairs: matched to a real person at a distance below the threshold.
    ``finite=False`` (a tag or score that is not finite somewhere): costs that are not finite
    become +-1e10 (a NaN tag's distance is NaN: it matches nobody), so that the solver ends.
    """
    n = b - a
    if n * n_people <= _SMALL and finite:
        means = people.means[:n_people].tolist()
        dists, costs = [], []
        for c in range(a, b):
            t, v = people.tag_list[c], vals[c]
            drow = []
            for m in means:
                sq = 0.0
                for x, mu in zip(t, m):
                    d = x - mu
                    sq += d * d
                drow.append(math.sqrt(sq))
            dists.append(drow)
            costs.append([round(d) * 100.0 - v for d in drow])
        if n == 1:  # one row: its first cheapest column
            row = costs[0]
            i = row.index(min(row))
            return [(a, i)] if dists[0][i] < tag_threshold else []
        if n > n_people:  # as the original: square up with prohibitive columns ("new person")
            pad = [1e10] * (n - n_people)
            costs = [row + pad for row in costs]
        cols = solver(costs)
    else:
        diff = people.tags64[a:b, None, :] - people.means[None, :n_people].astype(np.float64)
        dist = np.sqrt((diff * diff).sum(axis=2))
        cost = np.rint(dist) * 100.0 - np.array(vals[a:b])[:, None]
        if not finite:
            cost = np.nan_to_num(cost, nan=1e10, posinf=1e10, neginf=-1e10)
        if n > n_people:
            cost = np.concatenate([cost, np.full((n, n - n_people), 1e10)], axis=1)
        cols = np.asarray(solver(cost), np.int64)
        rows = np.flatnonzero(cols < n_people)
        rows = rows[dist[rows, cols[rows]] < tag_threshold]
        return list(zip((rows + a).tolist(), cols[rows].tolist()))
    return [(a + r, i) for r, i in enumerate(cols) if i < n_people and dists[r][i] < tag_threshold]


@functools.lru_cache(maxsize=1)
def _reference_solver() -> Callable[[Any], list[int]]:
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

    def solve(cost: Any) -> list[int]:
        cost = np.asarray(cost, np.float64)
        col = [-1] * cost.shape[0]
        for r, c in Munkres().compute(cost):
            col[r] = c
        return col

    return solve


def _group_people(
    bounds: list[int],
    order: tuple[int, ...],
    k: int,
    tags: np.ndarray,
    vals: list[float],
    tag_threshold: float,
    legacy: bool = False,
    max_people: int = 30,
) -> _People:
    """Joint types in ``order``; each candidate joins its matched person or founds a new one.

    ``legacy``: the original's matching, defects included: people are keyed by the first tag
    value of their founding joint (equal keys merge), only the first ``max_people`` people
    found are candidates for matching (crowds fragment), and ties resolve as its solver did.
    """
    people = _People(k, tags)
    finite = bool(np.isfinite(tags).all() and np.isfinite(vals).all())
    if legacy:
        return _group_people_legacy(people, bounds, order, vals, tag_threshold, max_people, finite)
    for j in order:
        a, b = bounds[j], bounds[j + 1]
        if a == b:
            continue
        pairs = _match(people, a, b, vals, people.n, tag_threshold, finite=finite) if people.n else []
        if pairs:
            cs, ps = np.array(pairs, np.int64).T
            people.join(j, cs, ps)
            if len(pairs) == b - a:  # all joined someone
                continue
        new = np.ones(b - a, bool)  # the candidates that found a new person
        if pairs:
            new[cs - a] = False
        people.found(j, np.flatnonzero(new) + a)
    return people


def _group_compiled(
    bounds: list[int], order: tuple[int, ...], k: int, tags: np.ndarray, vals: np.ndarray, tag_threshold: float
) -> tuple[np.ndarray, int] | None:
    """:func:`_group_people` (not legacy) in the compiled kernel ``litepose_group_people``: the same
    float64 costs, float32 tag sums and solver choices, so the same people; SciPy's solver (matrices
    wider than 30 columns) is called from here when the kernel stops for it. Returns ``(member, n)``,
    or None (no kernel, more than 2 tag channels, a value that is not finite)."""
    fn = kernel("litepose_group_people")
    n_cand, l_ = tags.shape
    if fn is None or not 1 <= l_ <= 2 or not (np.isfinite(tags).all() and np.isfinite(vals).all()):
        return None
    rows = max(n_cand, 1)
    member = np.full((rows, k), -1, np.int64)
    tsum, means = np.empty((rows, l_), np.float32), np.empty((rows, l_), np.float32)
    count = np.empty(rows, np.float32)
    width = max(1, max(b - a for a, b in zip(bounds[:-1], bounds[1:])))
    scratch = np.empty((2, width * rows))
    state = np.zeros(5, np.int64)
    cols = np.zeros(width, np.int64)
    b_, o_ = np.asarray(bounds, np.int64), np.asarray(order, np.int64)
    tags = np.ascontiguousarray(tags, np.float32)
    vals = np.ascontiguousarray(vals, np.float64)
    args = (b_.ctypes.data, o_.ctypes.data, k, tags.ctypes.data, l_, vals.ctypes.data, tag_threshold)
    args += tuple(a.ctypes.data for a in (member, tsum, count, means, state, scratch[0], scratch[1], cols))
    while True:
        rc = fn(*args)
        if rc == 0:
            return member, int(state[1])
        if rc != 1:
            return None
        n, m = int(state[3]), int(state[4])
        cols[:n] = wide_assignment(scratch[0, : n * m].reshape(n, m))  # (the kernel checked that it is wide)
        state[2] = 1


def _group_people_legacy(
    people: _People,
    bounds: list[int],
    order: tuple[int, ...],
    vals: list[float],
    tag_threshold: float,
    max_people: int,
    finite: bool = True,
) -> _People:
    """:func:`_group_people` with the original's defects, one candidate at a time: people keyed by the
    first tag value of their founding joint (a candidate whose key exists overwrites that person's joint
    and restarts its tags), only the first ``max_people`` people matched."""
    solver = _reference_solver()
    keys: dict[float, int] = {}
    for j in order:
        a, b = bounds[j], bounds[j + 1]
        if a == b:
            continue
        person = {}
        if people.n:
            person = dict(_match(people, a, b, vals, min(people.n, max_people), tag_threshold, solver, finite))
        for c in range(a, b):
            i = person.get(c)
            if i is None:
                key = people.tag_list[c][0]
                i = keys.get(key)
                if i is None:
                    keys[key] = people.n
                    people.found(j, np.array([c]))
                    continue
                people.join(j, np.array([c]), np.array([i]), restart=True)  # the defect
            else:
                people.join(j, np.array([c]), np.array([i]))
    return people


SUBPIXEL = ("quarter", "parabola")
_LOG_FLOOR = np.float32(1e-6)


def _parabola(lo: np.ndarray, mid: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Vertex offset of the parabola through the logs of (lo, mid, hi) at -1, 0, +1, in [-0.49, 0.49]
    (0 where the curve is not concave). A Gaussian peak is a parabola in log space. Elementwise
    (arrays of any one shape; the logs in one call)."""
    a, b, c = np.log(np.maximum(np.stack([lo, mid, hi]), _LOG_FLOOR))
    curv = 2 * b - a - c
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(curv > 0, 0.5 * (c - a) / curv, 0.0)
    return np.clip(off, -0.49, 0.49).astype(np.float32)


def _parabola_compiled(
    det: np.ndarray, k: np.ndarray, y: np.ndarray, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`_offsets`' parabola in two compiled steps around numpy's log (the same float32
    operations, the same logs), or None without the kernels or for maps that are not float32."""
    gather, vertex = kernel("litepose_peak_neighbours"), kernel("litepose_parabola_offsets")
    if gather is None or vertex is None or det.dtype != np.float32 or not det.flags.c_contiguous:
        return None
    h, w = det.shape[1:]
    n = len(k)
    k, y, x = (np.ascontiguousarray(a, np.int64) for a in (k, y, x))
    near = np.empty((6, n), np.float32)
    gather(det.ctypes.data, h, w, k.ctypes.data, y.ctypes.data, x.ctypes.data, n, _LOG_FLOOR, near.ctypes.data)
    logs = np.log(near)
    off = np.empty((2, n), np.float32)
    vertex(logs.ctypes.data, y.ctypes.data, x.ctypes.data, n, h, w, off[0].ctypes.data, off[1].ctypes.data)
    return off[0], off[1]


def _offsets(
    det: np.ndarray, k: np.ndarray, y: np.ndarray, x: np.ndarray, mode: str = "quarter"
) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel (x, y) offsets of peaks from their horizontal / vertical neighbours (edges clamped):
    ``quarter``: +-0.25 toward the larger neighbour (the original's, clamping included);
    ``parabola``: :func:`_parabola`, and 0 along an axis where the peak lies on the map's border.

    On the border one neighbour is missing; clamping it to the peak's own value makes the parabola
    flat on that side, and its vertex would land half a map pixel (one input pixel at half
    resolution) outward, beyond the data. With one neighbour there is no parabola: no offset."""
    h, w = det.shape[1:]
    if mode == "parabola":
        fast = _parabola_compiled(det, k, y, x)
        if fast is not None:
            return fast
    at = (k * h + y) * w + x  # flat indices: one gather for all neighbours
    step_x, step_y = (
        np.stack([at - (x > 0), at, at + (x < w - 1)]),
        np.stack([at - w * (y > 0), at, at + w * (y < h - 1)]),
    )
    (left, mid, right), (up, _, down) = np.ascontiguousarray(det).reshape(-1).take(np.stack([step_x, step_y]))
    if mode == "parabola":
        off = _parabola(np.stack([left, up]), np.stack([mid, mid]), np.stack([right, down]))
        ox = np.where((x > 0) & (x < w - 1), off[0], np.float32(0))
        oy = np.where((y > 0) & (y < h - 1), off[1], np.float32(0))
        return ox, oy
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


_CHUNK = 1 << 17  # people x pixels scored at once by the dense search


def _search_dense(dj: np.ndarray, tj: np.ndarray, means: np.ndarray) -> np.ndarray:
    """First argmax (flat index) of ``dj - round(||tj - m||)`` for each mean tag ``m``.

    Exact without rounding every distance. First, everyone is scored on the pixels with the
    highest heatmap values (about the top 2%, threshold ``t`` from a sample): a score never
    exceeds the heatmap value, so a best score ``>= t`` there cannot be beaten elsewhere.
    Otherwise ``r = round(distance)`` is at least ``r_min`` everywhere; the best heatmap value
    ``v0`` among pixels at ``r_min`` (found from the squared distances against an exact float32
    bound, no square root) scores ``v0 - r_min``, and any other pixel scores at most
    ``max - r``, so only pixels with ``r <= r_min + floor(max - v0)`` can win. Usually that is
    ``r_min`` alone (heatmap values span less than 1) and the answer is already known.
    """
    h, w, l_ = tj.shape
    d = dj.reshape(-1)
    out = np.full(len(means), -1, np.int64)
    sample = np.sort(d[:: max(1, d.size // 1024)])
    t = sample[int(len(sample) * (1.0 - _TOP_FRACTION))]
    cand = np.flatnonzero(d >= t)  # ascending: first argmax = first in raster order
    if cand.size <= 5 * _TOP_FRACTION * d.size:  # (not a plateau)
        sq = tj[:, :, 0].reshape(-1)[cand][None] - means[:, 0, None]  # one plane at a time: fast
        sq *= sq
        for c in range(1, l_):
            dc = tj[:, :, c].reshape(-1)[cand][None] - means[:, c, None]
            dc *= dc
            sq += dc
        f = d[cand][None] - np.rint(np.sqrt(sq))
        k = f.argmax(axis=1)
        ok = f[np.arange(len(means)), k] >= t
        out[ok] = cand[k[ok]]
        if ok.all():
            return out
    todo = np.flatnonzero(out < 0)
    if l_ > 1 and len(todo) > 1 and tj.strides[2] == tj.itemsize:  # channel-last: one planar copy
        tj = np.moveaxis(np.ascontiguousarray(np.moveaxis(tj, 2, 0)), 0, 2)
    dmax = float(d.max())
    hw = d.size
    step = max(1, _CHUNK // hw)
    for lo in range(0, len(todo), step):
        ids = todo[lo : lo + step]
        s = _squared_tag_distance(tj, means[ids]).reshape(len(ids), hw)  # (n, H*W) float32
        # the best value among the pixels at r = 0, for everyone at once (usually all of them)
        hit = np.flatnonzero(s <= _rounded_sqrt_bound(0))
        best = {}
        if hit.size:  # per person (hits are sorted by person): the first pixel of highest value
            who = hit // hw
            pix = hit - who * hw
            starts = _run_starts(who)
            dv = d[pix]
            top = np.repeat(np.maximum.reduceat(dv, starts), np.diff(starts, append=len(dv)))
            eq = np.flatnonzero(dv == top)
            first = eq[_run_starts(who[eq])]
            best = dict(zip(who[first].tolist(), pix[first].tolist()))
        for row, i in enumerate(ids.tolist()):
            si = s[row]
            r_min = 0
            b = best.get(row)
            if b is None:  # nobody within 0.5: the nearest tag distance, rounded
                r_min = int(np.rint(np.sqrt(si.min())))
                c = np.flatnonzero(si <= _rounded_sqrt_bound(r_min))
                b = int(c[d[c].argmax()])
            # (a small margin: float32 scores of nearly equal values may round to a tie)
            extra = int(np.floor(dmax - float(d[b]) + 1e-4))
            if extra >= 1:  # a pixel farther in tag space may still win: score all close enough
                c = np.flatnonzero(si <= _rounded_sqrt_bound(r_min + extra))
                b = int(c[(d[c] - np.rint(np.sqrt(si[c]))).argmax()])
            out[i] = b
    return out


def _joint_chunks(joint: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """``joint`` (sorted) cut into at most ``parts`` ranges of whole joints, of about equal length."""
    n = len(joint)
    starts = np.flatnonzero(np.diff(joint)) + 1 if n else np.zeros(0, np.int64)
    parts = max(1, min(parts, len(starts) + 1, MAX_THREADS))
    cuts = [0]
    for i in range(1, parts):  # the joint start nearest to i/parts of the entries, past the last cut
        later = starts[starts > cuts[-1]]
        if not len(later):
            break
        cuts.append(int(later[np.abs(later - i * n / parts).argmin()]))
    return [(a, b) for a, b in zip(cuts, cuts[1:] + [n]) if b > a] or [(0, n)]


def _search_all(
    det: np.ndarray, tags: np.ndarray, joint: np.ndarray, means: np.ndarray, threads: int = 1
) -> np.ndarray:
    """:func:`_search_dense`'s answer for each mean tag ``means[i]`` on joint ``joint[i]`` (sorted):
    from the compiled kernel when it is available (exact by bounds on blocks of the map; the
    joints split over up to ``threads`` threads), else from :func:`_search_dense`, joint by joint."""
    fn = kernel("litepose_refine_search_joints")
    _k, h, w, l_ = tags.shape
    if fn is not None and not any(s % 4 for s in tags.strides) and det.flags.c_contiguous:
        m = np.ascontiguousarray(means, np.float32)
        j = np.ascontiguousarray(joint, np.int64)
        out = np.empty(len(m), np.int64)
        strides = tuple(s // 4 for s in tags.strides)

        def search(entries: tuple[int, int]) -> int:  # entries a..b (whole joints): one call, into out[a:b]
            a, b = entries
            at = (m[a:].ctypes.data, j[a:].ctypes.data, b - a, out[a:].ctypes.data)
            return fn(det.ctypes.data, tags.ctypes.data, *strides, h, w, l_, *at)

        if all(rc == 0 for rc in in_threads(search, _joint_chunks(j, threads))):
            return out
    starts = _run_starts(joint).tolist() + [len(joint)]
    found = []
    for a, b in zip(starts[:-1], starts[1:]):
        tj = tags[int(joint[a])]
        if tj.strides[2] != tj.itemsize and tj.strides[1] != tj.itemsize:
            tj = np.ascontiguousarray(tj)
        found.append(_search_dense(det[int(joint[a])], tj, means[a:b]))
    return np.concatenate(found)


def _refine(det: np.ndarray, tags: np.ndarray, kpts: np.ndarray, subpixel: str = "quarter", threads: int = 1) -> None:
    """Fill missing joints (score 0) in place: the first argmax of
    ``heatmap - round(distance of the tag to the person's mean tag)``, kept where the heatmap
    value there is positive (the original's refine; ties go to the first pixel in raster order)."""
    present = kpts[:, :, 2] > 0
    if present.all():
        return
    w = det.shape[2]
    pp, kk = np.nonzero(present)
    xi = kpts[pp, kk, 0].astype(np.int32)
    yi = kpts[pp, kk, 1].astype(np.int32)
    t = tags[kk, yi, xi]  # (n, L)
    sums = np.zeros((len(kpts), tags.shape[3]), np.float32)
    np.add.at(sums, pp, t)
    means = sums / present.sum(1).astype(np.float32)[:, None]
    mj, mp = np.nonzero(~present.T)  # missing (joint, person), by joint
    best = _search_all(det, tags, mj, means[mp], threads)
    v = det.reshape(len(det), -1)[mj, best]
    good = v > 0
    mj, mp, best, v = mj[good], mp[good], best[good], v[good]
    by, bx = best // w, best % w
    ox, oy = _offsets(det, mj, by, bx, subpixel)
    kpts[mp, mj, 0] = bx + 0.5 + ox
    kpts[mp, mj, 1] = by + 0.5 + oy
    kpts[mp, mj, 2] = v


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
    subpixel: str = "quarter",
    threads: int = 1,
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
        subpixel: the adjust step's offsets, ``"quarter"`` (the original's) or ``"parabola"``
            (module docstring, step 3).
        threads: the compiled peak search and refine's searches split by joint over up to this
            many threads (the same people; figures in docs/inference.md).

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
    if subpixel not in SUBPIXEL:
        raise ValueError(f"subpixel must be one of {', '.join(SUBPIXEL)}, got {subpixel!r}")
    det = np.ascontiguousarray(det)
    k_ = det.shape[0]
    if grouping_order is None:
        order = _default_order(k_)
    else:
        order = tuple(int(i) for i in grouping_order)
        if sorted(order) != list(range(k_)):
            raise ValueError(f"grouping_order must be a permutation of 0..{k_ - 1}, got {list(order)}")

    threads = max(1, int(threads))
    joint, y, x, val = find_peaks(det, detection_threshold, max_people, nms_kernel, threads)
    cand_tags = np.ascontiguousarray(tag[joint, y, x])  # any strides of `tag`, no copy of the map
    bounds = np.searchsorted(joint, np.arange(k_ + 1)).tolist()
    vals = val.astype(np.float64)
    grouped = None if legacy else _group_compiled(bounds, order, k_, cand_tags, vals, float(tag_threshold))
    if grouped is None:
        people = _group_people(bounds, order, k_, cand_tags, vals.tolist(), tag_threshold, legacy, max_people)
        grouped = people.member, people.n
    member, n = grouped
    kpts = np.zeros((n, k_, 3), np.float32)
    if n:
        member = member[:n]
        pp, kk = np.nonzero(member >= 0)
        c = member[pp, kk]
        yc, xc = y[c], x[c]
        kpts[pp, kk, 2] = val[c]
        if adjust:
            ox, oy = _offsets(det, kk, yc, xc, subpixel)
            kpts[pp, kk, 0] = xc + (0.5 + ox)
            kpts[pp, kk, 1] = yc + (0.5 + oy)
        else:
            kpts[pp, kk, 0], kpts[pp, kk, 1] = xc, yc
    scores = kpts[:, :, 2].mean(axis=1)
    if not legacy and n:
        keep = np.argsort(-scores, kind="stable")[:max_people]
        kpts, scores = kpts[keep], scores[keep]
    if refine and len(kpts):
        _refine(det, tag, kpts, subpixel, threads)
    return kpts, scores.astype(np.float32)
