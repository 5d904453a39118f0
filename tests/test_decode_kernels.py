"""The decoder's speed-ups change no result: the compiled kernels (litepose.decode._native) give
exactly what their Python versions give, and the numpy merge gives the bits of the plain formula."""

from __future__ import annotations

import ctypes

import cv2
import numpy as np
import pytest
import torch
from conftest import shared

from litepose.data.keypoints import keypoint_set_for
from litepose.decode import _native, group
from litepose.decode import assignment as A
from litepose.decode import grouping as G
from litepose.decode import testtime as tt
from litepose.testing import synthetic_maps

CASE_FILES = ["decode_cases.pt", "decode_cases_1.pt", "decode_cases_2.pt", "decode_cases_4.pt"]


@pytest.fixture(scope="module")
def compiled():
    """The kernel library; the tests comparing it with Python skip where it cannot be built."""
    if _native._library() is None:
        pytest.skip("the compiled kernels are unavailable here (no C compiler?); the Python versions run")
    return _native._library()


def _python_only(monkeypatch):
    monkeypatch.setattr(_native, "enabled", False)


def test_assignment_kernel_is_the_python_solver(compiled, monkeypatch):
    """Tie-heavy matrices (rounded distances, equal scores, padding columns), up to 30 x 30."""
    rng = np.random.default_rng(0)
    for trial in range(1500):
        n = int(rng.integers(1, 31))
        m = int(rng.integers(n, 31))
        cost = np.round(rng.uniform(0, 1.3 if trial % 2 else 4, (n, m))) * 100 - rng.uniform(0, 1, (n, 1))
        if trial % 3 == 0:
            cost = np.round(cost / 50) * 50  # whole rows of ties
        if trial % 5 == 0 and m > n:
            cost[:, n:] = 1e10
        assert A.min_cost_assignment(cost) == A._min_cost_assignment_py(cost.tolist()), f"trial {trial}"


def test_squared_tag_distance_kernel_rounds_as_numpy(compiled):
    """Each product rounded before the sum (no fused multiply-add), as numpy's float32 operations."""
    rng = np.random.default_rng(1)
    for l_ in (1, 2, 3):
        tags = rng.normal(0, 3, (20000, l_)).astype(np.float32)
        mean = rng.normal(0, 3, l_).astype(np.float32)
        want = (tags[:, 0] - mean[0]) * (tags[:, 0] - mean[0])
        for c in range(1, l_):
            want = want + (tags[:, c] - mean[c]) * (tags[:, c] - mean[c])
        got = np.empty(len(tags), np.float32)
        idx = np.arange(len(tags), dtype=np.int64)
        compiled.litepose_tag_sq(
            tags.ctypes.data, idx.ctypes.data, len(tags), l_, 1, l_, mean.ctypes.data, got.ctypes.data
        )
        np.testing.assert_array_equal(got, want)


def _search(dj, tj, means):
    """The kernel's search on one joint (the Python search when the kernel cannot run)."""
    return G._search_all(dj[None], tj[None], np.zeros(len(means), np.int64), means)


def _naive_search(dj, tj, means):
    s = ((tj[None].astype(np.float32) - means[:, None, None, :]) ** 2).sum(-1, dtype=np.float32)
    return (dj[None] - np.rint(np.sqrt(s))).reshape(len(means), -1).argmax(1)


def test_refine_kernel_is_the_exact_search(compiled):
    """Smooth and noisy tags, 1-3 channels, ties, far-away tags on the strongest pixels, sizes that are
    not multiples of the blocks, planar-backed, channel-last and mirrored (negative stride) tags."""
    rng = np.random.default_rng(2)
    for trial in range(24):
        h, w = [(64, 96), (128, 192), (37, 53), (5, 300), (256, 384), (1, 1)][trial % 6]
        l_ = 1 + trial % 3
        coarse = rng.normal(0, 1 + trial % 4, (h // 4 + 1, w // 4 + 1, l_)).astype(np.float32)
        tj = np.repeat(np.repeat(coarse, 4, 0), 4, 1)[:h, :w].copy()
        tj += rng.normal(0, 0.05 if trial % 2 else 1.0, tj.shape).astype(np.float32)
        dj = rng.uniform(-1.2, 1.2 if trial % 2 else 0.4, (h, w)).astype(np.float32)
        dj[rng.integers(h), rng.integers(w)] = dj.max()  # a tie
        if trial % 4 == 2:
            tj[dj > np.quantile(dj, 0.9)] += 10.0
        if trial % 5 == 3:
            dj = np.round(dj * 4) / 4  # plateaus: many ties
        means = rng.normal(0, 2, (9, l_)).astype(np.float32)
        want = _naive_search(dj, tj, means)
        planar = np.moveaxis(np.ascontiguousarray(np.moveaxis(tj, 2, 0)), 0, 2)
        mirrored = np.ascontiguousarray(tj[:, ::-1])[:, ::-1]
        for t in (tj, planar, mirrored):
            np.testing.assert_array_equal(_search(dj, t, means), want, err_msg=f"trial {trial}")
            np.testing.assert_array_equal(G._search_dense(dj, t, means), want, err_msg=f"trial {trial}")


def test_refine_kernel_leaves_non_finite_maps_to_numpy(compiled, monkeypatch):
    rng = np.random.default_rng(3)
    dj = rng.uniform(0, 1, (40, 60)).astype(np.float32)
    tj = rng.normal(0, 1, (40, 60, 2)).astype(np.float32)
    means = rng.normal(0, 1, (4, 2)).astype(np.float32)
    for bad in (np.nan, np.inf):
        d, t = dj.copy(), tj.copy()
        d[3, 4] = bad
        t[5, 6, 1] = bad
        for args in ((d, tj, means), (dj, t, means)):  # the numpy search's answer, or its error
            try:
                want = G._search_dense(*args)
            except ValueError:
                with pytest.raises(ValueError):
                    _search(*args)
            else:
                np.testing.assert_array_equal(_search(*args), want)


@pytest.mark.parametrize("kernel", [1, 3, 5, 7])
def test_peak_kernel_is_the_numpy_peak_search(compiled, monkeypatch, kernel):
    """Sparse, dense and plateau maps (ties), a NaN, sizes that are not multiples of 8: the same peaks,
    the same 20 strongest per joint in the same order."""
    rng = np.random.default_rng(kernel)
    maps = []
    for trial in range(6):
        k, h, w = 3, 37 + trial * 11, 53 + trial * 7
        if trial < 2:
            det = synthetic_maps(3, h, w, num_joints=k, noise=0.05, seed=trial).heatmaps
        elif trial < 4:
            det = rng.uniform(0, 1, (k, h, w)).astype(np.float32)
        else:
            det = np.round(rng.uniform(0, 0.3, (k, h, w)), 1).astype(np.float32)
        det[0, 5, 7] = np.nan
        maps.append(det)
    with monkeypatch.context() as m:  # the kernel must answer, top-k and order included
        m.setattr(G, "_candidates", None)
        got = [G.find_peaks(d, 0.1, 20, kernel) for d in maps]
    _python_only(monkeypatch)
    want = [G.find_peaks(d, 0.1, 20, kernel) for d in maps]
    for g_, w_ in zip(got, want):
        for a, b in zip(g_, w_):
            np.testing.assert_array_equal(a, b)


def _decode_all(inputs):
    out = []
    for det, tag in inputs:
        for kw in ({}, {"legacy": True}, {"subpixel": "parabola", "detection_threshold": 0.05}):
            out.append(group(det, tag, **kw))
    return out


def test_grouping_is_the_same_with_and_without_kernels(compiled, monkeypatch):
    """The shared decoder cases and a crowd of 40 (wider than 30: SciPy's solver too): identical
    people, bit for bit, whether the kernels run or the Python versions."""
    inputs = []
    for f in CASE_FILES:
        inputs += [(c["det"], c["tag"]) for c in torch.load(shared(f"ref/{f}"), weights_only=True)["cases"]]
    crowd = synthetic_maps(40, 192, 256, missing_per_person=3, tag_sep=0.6, seed=7)
    inputs.append((crowd.heatmaps, crowd.tags))
    got = _decode_all(inputs)
    _python_only(monkeypatch)
    want = _decode_all(inputs)
    for (ka, sa), (kb, sb) in zip(got, want):
        np.testing.assert_array_equal(ka, kb)
        np.testing.assert_array_equal(sa, sb)


def test_grouping_kernel_is_the_python_grouping(compiled, monkeypatch):
    """litepose_group_people gives _group_people's people (which candidate joins whom, in which order)
    on random decodes: crowds from 3 to 70 people (SciPy's solver called back for matrices wider
    than 30 columns), close tags (ties, rejected matches), 1 or 2 tag channels, low thresholds; and
    group() then returns the same keypoints bit for bit with or without the kernels."""
    rng = np.random.default_rng(8)
    called = []
    wide = G.wide_assignment
    monkeypatch.setattr(G, "wide_assignment", lambda c: called.append(c.shape) or wide(c))
    inputs = []
    for trial in range(30):
        people = int(rng.integers(3, 71))
        maps = synthetic_maps(
            people, 96, 128, tag_dims=1 + trial % 2, missing_per_person=int(rng.integers(0, 6)),
            noise=float(rng.choice([0.05, 0.3])), tag_sep=float(rng.choice([0.3, 0.6, 1.5])), seed=100 + trial,
        )  # fmt: skip
        for thr, top in ((0.1, 30), (0.05, 60)):
            joint, y, x, val = G.find_peaks(maps.heatmaps, thr, top)
            cand = np.ascontiguousarray(maps.tags[joint, y, x])
            bounds = np.searchsorted(joint, np.arange(18)).tolist()
            order = keypoint_set_for(17).grouping_order
            got = G._group_compiled(bounds, order, 17, cand, val.astype(np.float64), 1.0)
            assert got is not None
            want = G._group_people(bounds, order, 17, cand, val.astype(np.float64).tolist(), 1.0)
            assert got[1] == want.n, f"trial {trial}"
            np.testing.assert_array_equal(got[0][: got[1]], want.member[: want.n], err_msg=f"trial {trial}")
        inputs.append((maps.heatmaps, maps.tags))
    assert called, "no matrix wider than 30 columns: SciPy's hand-over is untested"
    got = [group(d, t, detection_threshold=0.05, max_people=60) for d, t in inputs]
    _python_only(monkeypatch)
    want = [group(d, t, detection_threshold=0.05, max_people=60) for d, t in inputs]
    for (ka, sa), (kb, sb) in zip(got, want):
        np.testing.assert_array_equal(_bits(ka), _bits(kb))
        np.testing.assert_array_equal(_bits(sa), _bits(sb))


def test_offsets_kernel_is_the_numpy_parabola(compiled, monkeypatch):
    """The parabola offsets (compiled around numpy's log) are numpy's bits: peaks on every border and
    corner, flat, negative and zero neighbourhoods (log floor, no curvature), NaN and infinite
    neighbours, huge and tiny values."""
    rng = np.random.default_rng(9)
    for trial in range(40):
        k, h, w = 3, int(rng.integers(1, 12)), int(rng.integers(1, 12))
        det = _awkward(rng, (k, h, w), trial)
        if trial % 3 == 0:
            det = np.abs(det)
        if trial % 4 == 1:
            det[rng.random(det.shape) < 0.2] = [np.nan, np.inf, -np.inf, 0.0][trial % 8 // 2]
        n = 50
        kk, yy, xx = rng.integers(0, k, n), rng.integers(0, h, n), rng.integers(0, w, n)
        got = G._parabola_compiled(det, kk, yy, xx)
        assert got is not None
        with monkeypatch.context() as m:
            _python_only(m)
            want = G._offsets(det, kk, yy, xx, "parabola")
        for a, b in zip(got, want):
            np.testing.assert_array_equal(_bits(a), _bits(b), err_msg=f"trial {trial}")


# -- the numpy merge (ONNX Runtime / OpenVINO outputs): the bits of the plain formula ---------------


def _cv2_up(x, size):
    """(N, C, h, w) -> (N, C, H, W) by cv2.resize plane by plane (what the kernels must equal)."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    return np.stack([np.stack([cv2.resize(p, size[::-1], interpolation=cv2.INTER_LINEAR) for p in im]) for im in x])


def _plain_merge(outputs, k, size, flipped, flip_index):
    """The original's merge written plainly (new arrays at every step), numpy arrays and cv2 only."""
    big = outputs[-1].shape[2:]
    hm = 0
    for i, o in enumerate(outputs):
        o = o if i == len(outputs) - 1 else _cv2_up(o, big)
        hm = hm + o[:, :k]
    tags = [next(_cv2_up(o, big) for o in outputs if o.shape[1] > k)[:, k:]]
    heatmaps = [hm / len(outputs)]
    if flipped is not None:
        back = [(o if i == len(flipped) - 1 else _cv2_up(o, big))[..., ::-1] for i, o in enumerate(flipped)]
        hm_f = 0
        for o in back:
            hm_f = hm_f + o[:, :k][:, flip_index]
        heatmaps.append(hm_f / len(back))
        tags.append(next(o for o in back if o.shape[1] > k)[:, k:][:, flip_index])
    return [_cv2_up(np.ascontiguousarray(m), size) for m in heatmaps], [
        _cv2_up(np.ascontiguousarray(t), size) for t in tags
    ]


def _bits(a):
    """The float32 bits (so that -0.0 differs from +0.0 and NaNs compare)."""
    return np.ascontiguousarray(a, np.float32).view(np.uint32)


def _awkward(rng, shape, trial):
    """Random float32 maps with what rounding can trip on: huge and subnormal scales, quarter steps
    (exact ties), signed zeros."""
    scale = [1.0, 1e30, 1e-30, 1e-44, 1e-39, 3.0][trial % 6]
    x = (rng.normal(0, 1, shape) * scale).astype(np.float32)
    if trial % 4 == 1:
        x = np.round(x * 4) / 4
    if trial % 3 == 2:
        x[rng.random(shape) < 0.3] = -0.0
    if trial % 5 == 3:
        x[rng.random(shape) < 0.3] = 0.0
    return x


def test_upsampling_kernel_is_cv2_resize(compiled, monkeypatch):
    """litepose_up2 (``_up`` by 2x) gives cv2.resize's INTER_LINEAR bits, the signs of zeros, subnormal
    and huge values included, on sizes that are not multiples of the vector width; a map with a NaN
    or of one row or column goes to cv2 (the same answer, NaN for NaN)."""
    rng = np.random.default_rng(5)
    for trial in range(400):
        h, w = (64, 96) if trial % 10 == 0 else (int(rng.integers(2, 40)), int(rng.integers(2, 40)))
        x = _awkward(rng, (1, 2, h, w), trial)
        want = _cv2_up(x, (2 * h, 2 * w))
        with monkeypatch.context() as m:  # the kernel must answer: cv2 is not there
            m.setattr(tt.cv2, "resize", None)
            got = tt._up(x, (2 * h, 2 * w))
        np.testing.assert_array_equal(_bits(got), _bits(want), err_msg=f"trial {trial}")
    for x in (rng.normal(0, 1, (1, 1, 1, 7)), rng.normal(0, 1, (1, 1, 6, 1)), rng.normal(0, 1, (1, 2, 5, 6))):
        x = x.astype(np.float32)
        x.reshape(-1)[3] = np.nan
        size = (2 * x.shape[2], 2 * x.shape[3])
        np.testing.assert_array_equal(_bits(tt._up(x, size)), _bits(_cv2_up(x, size)))


def _merge_inputs(rng, trial, n, k, h, w):
    return [_awkward(rng, (n, 2 * k, h, w), trial), _awkward(rng, (n, k, 2 * h, 2 * w), trial + 1)]


def test_merge_kernel_is_the_numpy_merge(compiled, monkeypatch):
    """litepose_merge_up2 (the usual pair of outputs, flip test or not, one or two images, 17 or 14
    joints, kept at the 1/2-resolution size or brought to the input size): the numpy + cv2 merge's
    bits; with a NaN, that merge runs (the same answer)."""
    rng = np.random.default_rng(6)
    cases = []
    for trial in range(24):
        k = 17 if trial % 2 else 14
        n, h, w = 1 + trial % 2, int(rng.integers(2, 30)), int(rng.integers(2, 30))
        if trial % 8 == 0:
            h, w = 64, 96
        outputs = _merge_inputs(rng, trial, n, k, h, w)
        flipped = _merge_inputs(rng, trial + 7, n, k, h, w) if trial % 3 else None
        if trial % 7 == 5:
            outputs[1][0, 1, 2, 3] = np.nan
        size = (4 * h, 4 * w) if trial % 4 == 3 else (2 * h, 2 * w)
        cases.append((outputs, k, size, flipped, keypoint_set_for(k).flip_index))
    with monkeypatch.context() as m:  # the kernel must answer where all is finite: cv2 is not there
        m.setattr(tt.cv2, "resize", lambda *a, **kw: (_ for _ in ()).throw(AssertionError("cv2 called")))
        got = [tt.merge_outputs(*c) for c in cases if np.isfinite(c[0][1]).all()]
    got = [tt.merge_outputs(*c) for c in cases]
    _python_only(monkeypatch)
    want = [tt.merge_outputs(*c) for c in cases]
    for i, ((gh, gt), (wh, wt)) in enumerate(zip(got, want)):
        for a, b in zip(gh + gt, wh + wt):
            np.testing.assert_array_equal(_bits(a), _bits(b), err_msg=f"case {i}")


@pytest.mark.parametrize("size", [(64, 96), (128, 192), (100, 150)])
def test_numpy_merge_gives_the_plain_formulas_bits(size):
    """Two outputs (the network's), three (tags in the first), two of one size, flip test or not, maps
    kept at the 1/2-resolution size (fast chain) or brought to another: the same float32 bits, and
    the tags stacked without a copy."""
    rng = np.random.default_rng(4)
    fi = keypoint_set_for(17).flip_index
    two = [rng.normal(0, 1, (2, 34, 32, 48)).astype(np.float32), rng.normal(0, 1, (2, 17, 64, 96)).astype(np.float32)]
    three = [rng.normal(0, 1, (1, 34, 16, 24)).astype(np.float32), *[o[:1] for o in two]]
    same = [rng.normal(0, 1, (1, 34, 64, 96)).astype(np.float32), two[1][:1]]  # nothing to upsample
    for outputs in (two, three, same):
        for flipped in (None, [rng.normal(0, 1, o.shape).astype(np.float32) for o in outputs]):
            hms, tags = tt.merge_outputs(outputs, 17, size, flipped, fi)
            want_h, want_t = _plain_merge(outputs, 17, size, flipped, fi)
            for a, b in zip(hms + tags, want_h + want_t):
                np.testing.assert_array_equal(a, b)
            hm, tag = tt.aggregate([(1.0, hms, tags)])
            want = want_h[0] if flipped is None else (want_h[0] + want_h[1]) / 2.0
            np.testing.assert_array_equal(hm, want)
            np.testing.assert_array_equal(tag, np.stack(want_t, axis=-1))
            assert np.shares_memory(tag, tags[0])


def test_flip_mean_kernel_is_numpys(compiled, monkeypatch):
    """aggregate's mean of two flips (compiled for contiguous float32 maps): numpy's bits, signed zeros,
    subnormal and overflowing sums included."""
    rng = np.random.default_rng(10)
    used = []
    real = tt.kernel
    monkeypatch.setattr(tt, "kernel", lambda name: used.append(name) or real(name))
    for trial in range(12):
        a, b = (_awkward(rng, (1, 17, 9, 13), trial + i) for i in (0, 1))
        if trial % 4 == 3:
            a[0, :, :3], b[0, :, :3] = 3e38, 3e38  # the sum overflows
        tags = [np.zeros_like(a)]
        got, _ = tt.aggregate([(1.0, [a, b], tags)])
        with monkeypatch.context() as m, np.errstate(over="ignore"):
            _python_only(m)
            want, _ = tt.aggregate([(1.0, [a, b], tags)])
        np.testing.assert_array_equal(_bits(got), _bits(want), err_msg=f"trial {trial}")
    assert "litepose_mean2" in used


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_numpy_merge_of_other_float_types_is_the_float32_merge(monkeypatch, dtype):
    """Outputs of another float type are merged as float32 (the buffer's type), with or without the
    kernels; before, cv2.resize of a float64 plane allocated its own float64 result and left the
    float32 buffer unwritten (uninitialised memory came back)."""
    rng = np.random.default_rng(11)
    fi = keypoint_set_for(17).flip_index
    outs = [rng.normal(0, 1, (1, 34, 6, 8)).astype(dtype), rng.normal(0, 1, (1, 17, 12, 16)).astype(dtype)]
    for enabled in (True, False):
        monkeypatch.setattr(_native, "enabled", enabled)
        for flipped in (None, [o[..., ::-1] for o in outs]):
            for size in ((12, 16), (24, 32)):
                got = tt.merge_outputs(outs, 17, size, flipped, fi)
                as32 = None if flipped is None else [o.astype(np.float32) for o in flipped]
                want = tt.merge_outputs([o.astype(np.float32) for o in outs], 17, size, as32, fi)
                for a, b in zip(got[0] + got[1], want[0] + want[1]):
                    np.testing.assert_array_equal(_bits(a), _bits(b))


def test_kernel_signatures_match_the_library(compiled):
    for name in _native._SIGNATURES:
        assert isinstance(_native.kernel(name), ctypes._CFuncPtr)


def test_refine_split_over_threads_gives_the_same_people(compiled, monkeypatch):
    """group(threads=N): the peak search and refine's searches cut by whole joints over N threads at
    once (the kernels release the GIL): the same people bit for bit as one thread, on crowds with
    missing joints, and the kernels really answer from more than one thread."""
    import threading

    real = G.kernel
    seen: dict[str, set[int]] = {}

    def spy(name):
        fn = real(name)
        if name not in ("litepose_refine_search_joints", "litepose_peaks") or fn is None:
            return fn

        def call(*args):
            seen.setdefault(name, set()).add(threading.get_ident())
            return fn(*args)

        return call

    monkeypatch.setattr(G, "kernel", spy)
    for seed, people in ((11, 30), (12, 5), (13, 1)):
        maps = synthetic_maps(people, 128, 192, tag_dims=2, missing_per_person=6, tag_sep=0.6, seed=seed)
        seen.clear()
        one = group(maps.heatmaps, maps.tags, threads=1)
        assert [len(seen.pop(k)) for k in ("litepose_peaks", "litepose_refine_search_joints")] == [1, 1]
        for n in (2, 3, 8):
            many = group(maps.heatmaps, maps.tags, threads=n)
            np.testing.assert_array_equal(many[0], one[0])
            np.testing.assert_array_equal(many[1], one[1])
        for k in ("litepose_peaks", "litepose_refine_search_joints"):
            threads_used = seen.pop(k)
            assert len(threads_used) >= 2 and threading.get_ident() in threads_used, k
        for n in (1, 2, 5, 17, 40):  # the peaks themselves, in any number of joint ranges
            for a, b in zip(G.find_peaks(maps.heatmaps, 0.1, 30, 5, n), G.find_peaks(maps.heatmaps, 0.1, 30)):
                np.testing.assert_array_equal(a, b)
    unrefined = group(maps.heatmaps, maps.tags, refine=False)[0]
    assert (one[0][..., 2] > 0).sum() > (unrefined[..., 2] > 0).sum()  # refine did fill joints


def test_joint_chunks_cut_between_joints_in_balanced_ranges():
    joint = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 5, 5], np.int64)
    for parts in (1, 2, 3, 4, 6, 20):
        chunks = G._joint_chunks(joint, parts)
        assert chunks[0][0] == 0 and chunks[-1][1] == len(joint) and len(chunks) <= min(parts, 5)
        assert all(b == c for (_, b), (c, _) in zip(chunks, chunks[1:]))  # contiguous
        assert all(joint[a] != joint[a - 1] for a, _ in chunks[1:])  # never inside a joint
    assert G._joint_chunks(joint, 2) == [(0, 5), (5, 12)]
    assert G._joint_chunks(np.zeros(7, np.int64), 4) == [(0, 7)]


def test_merge_in_threads_gives_the_same_maps(compiled, monkeypatch):
    """merge_outputs(threads=N): the image's and the mirror's kernel calls, and ranges of joints
    within each, run at once on several threads, into the same bits as one call after the other,
    with flip test or not; a NaN still falls back whole."""
    import threading

    real = tt.kernel
    seen: set[int] = set()

    def spy(name):
        fn = real(name)

        def call(*args):
            seen.add(threading.get_ident())
            return fn(*args)

        return call if name == "litepose_merge_up2" and fn is not None else fn

    monkeypatch.setattr(tt, "kernel", spy)
    rng = np.random.default_rng(9)
    fi = keypoint_set_for(17).flip_index
    for trial in range(6):
        outputs = _merge_inputs(rng, trial, 1 + trial % 2, 17, 64, 96)
        flipped = _merge_inputs(rng, trial + 7, 1 + trial % 2, 17, 64, 96)
        if trial == 5:
            flipped[0][0, 3, 2, 1] = np.nan
        size = (256, 384) if trial % 3 == 2 else (128, 192)
        for mirror in (flipped, None):
            one = tt.merge_outputs(outputs, 17, size, mirror, fi)
            for n in (2, 3, 8, 64):
                seen.clear()
                many = tt.merge_outputs(outputs, 17, size, mirror, fi, threads=n)
                assert len(seen) >= 2 and threading.get_ident() in seen
                for a, b in zip(one[0] + one[1], many[0] + many[1]):
                    np.testing.assert_array_equal(_bits(a), _bits(b), err_msg=f"trial {trial}, {n} threads")


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_decodes_in_threads_without_hanging(compiled):
    """The decoder's pool, used before a fork, is made again in the child (its threads are not
    there): a child's split refine finishes with the parent's people."""
    import os

    maps = synthetic_maps(12, 96, 128, tag_dims=2, missing_per_person=5, seed=21)
    want = group(maps.heatmaps, maps.tags, threads=2)[0]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 when it decodes the same people
        try:
            same = np.array_equal(group(maps.heatmaps, maps.tags, threads=2)[0], want)
            os.write(w, b"1" if same else b"0")
        finally:
            os._exit(0)
    os.close(w)
    import select

    ready, _, _ = select.select([r], [], [], 60)
    answer = os.read(r, 1) if ready else b""
    os.close(r)
    if not ready:  # hung: stop it
        os.kill(pid, 9)
    os.waitpid(pid, 0)
    assert answer == b"1"
