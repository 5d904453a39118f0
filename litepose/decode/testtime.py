"""The test-time chain after the network, as the original computes it.

The network's input is made by :mod:`litepose.preprocess` (resize, pad, normalise); its
:class:`~litepose.preprocess.ResizeGeometry` comes back here for the back-projection.

1. :func:`merge_outputs`: the network's outputs (1/4 resolution: K heatmaps + K tags,
   1/2 resolution: K heatmaps) are upsampled (bilinear, ``align_corners=False``) to the largest
   output and their heatmaps averaged; with flip test, the flipped outputs are flipped back and
   their joints permuted by the flip index; then heatmaps and tags are upsampled to the resized
   input size. Tags are therefore upsampled twice (1/4 -> 1/2 -> input), as in the original.
2. :func:`aggregate`: heatmaps averaged over flips and scales; tags (from scale 1.0) stacked,
   one channel per flip.
3. :func:`to_image`: inverse of the resize, applied to x and y only.

Floating-point operations follow the original's order so that results match it closely.

Every step takes numpy arrays or torch tensors alike (torch is imported only for tensors), so
that a runtime without torch (ONNX Runtime, OpenVINO) runs the same chain: tensors are
interpolated by ``torch.nn.functional.interpolate``, arrays by ``cv2.resize`` (the same
half-pixel bilinear rule, equal within float rounding). For arrays, the usual 2x steps run in a
compiled kernel (:mod:`litepose.decode._native`) that gives cv2.resize's bits, fused with the
heatmap average and the flip back for the network's usual pair of outputs; cv2 and numpy run
where it is unavailable, for other shapes, and for maps with a value that is not finite.

The fast chain (``Predictor(chain="fast")``) calls :func:`merge_outputs` with the size of the
network's 1/2-resolution output instead of the input size: the maps are grouped where the
network computed them, 4x fewer pixels, and :func:`to_image` maps from that size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from ..preprocess import ResizeGeometry
from ._native import kernel
from ._threads import MAX_THREADS, even_ranges, in_threads

if TYPE_CHECKING:
    import torch

#: Maps of either kind: a numpy array or a torch tensor.
Maps = Any

__all__ = [
    "merge_outputs",
    "aggregate",
    "to_image",
]


def _is_tensor(x: Maps) -> bool:
    return type(x).__module__.startswith("torch")


def _up(x: Maps, size: tuple[int, int]) -> Maps:
    """Bilinear (half-pixel centres, ``align_corners=False``) resize of (N, C, h, w) maps to ``size``
    = (H, W); maps already that size are returned as they are."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    if _is_tensor(x):
        import torch.nn.functional as F

        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    n, c = x.shape[:2]
    out = np.empty((n, c, *size), np.float32)
    fn = kernel("litepose_up2") if x.dtype == np.float32 and tuple(size) == (2 * x.shape[2], 2 * x.shape[3]) else None
    if fn is not None:  # cv2.resize's 2x upsampling, bit for bit, compiled (None: not finite, 1-pixel maps)
        src = np.ascontiguousarray(x)
        if fn(src.ctypes.data, n * c, x.shape[2], x.shape[3], out.ctypes.data) == 0:
            return out
    for i in range(n):  # plane by plane: contiguous in and out, faster than one many-channel call
        for j in range(c):
            cv2.resize(np.ascontiguousarray(x[i, j]), (size[1], size[0]), dst=out[i, j], interpolation=cv2.INTER_LINEAR)
    return out


def _resize_into(src: np.ndarray, channels: Sequence[int], dst: np.ndarray, mirror: bool) -> None:
    """``dst[:, j]`` = :func:`_up` of ``src[:, channels[j]]`` to ``dst``'s size, mirrored left-right
    when asked (resized first, as :func:`merge_outputs` does); plane by plane, through one small
    buffer, so no full-size temporary."""
    h, w = dst.shape[2:]
    tmp = np.empty((h, w), np.float32) if mirror else None
    for i in range(dst.shape[0]):
        for j, c in enumerate(channels):
            plane = np.ascontiguousarray(src[i, c])
            out = tmp if mirror else dst[i, j]
            if plane.shape == (h, w):
                np.copyto(out, plane)
            else:
                cv2.resize(plane, (w, h), dst=out, interpolation=cv2.INTER_LINEAR)
            if mirror:
                np.copyto(dst[i, j], tmp[:, ::-1])


def _flip(x: Maps) -> Maps:
    """Mirror (N, C, H, W) maps left-right."""
    if _is_tensor(x):
        import torch

        return torch.flip(x, [3])
    return x[..., ::-1]


def _cat(maps: list[Maps]) -> Maps:
    if _is_tensor(maps[0]):
        import torch

        return torch.cat(maps, dim=1)
    return np.concatenate(maps, axis=1)


def _stage_average(outputs: Sequence[Maps], k: int) -> tuple[Maps, Maps]:
    """Heatmaps averaged over the network's outputs (each upsampled to the last one's size) and
    the tags of the first output that has them."""
    size = tuple(outputs[-1].shape[2:])
    hm_sum: torch.Tensor | int = 0
    tags = None
    for i, out in enumerate(outputs):
        if i != len(outputs) - 1:
            out = _up(out, size)
        hm_sum = hm_sum + out[:, :k]
        if tags is None and out.shape[1] > k:
            tags = out[:, k:]
    if tags is None:
        raise ValueError("the network outputs carry no tag channels (expected 2K channels in one output)")
    return hm_sum / len(outputs), tags


def merge_outputs(
    outputs: Sequence[Maps],
    num_joints: int,
    size: tuple[int, int],
    flipped: Sequence[Maps] | None = None,
    flip_index: Sequence[int] | None = None,
    threads: int = 1,
) -> tuple[list[Maps], list[Maps]]:
    """One scale's outputs -> (heatmaps per flip, tags per flip), each (N, K, H, W) at ``size``
    = (height, width): the resized input's (the original chain) or the network's 1/2-resolution
    output's (the fast chain). ``flipped`` are the outputs for the mirrored input. ``threads`` > 1:
    numpy outputs are merged by the compiled kernel in that many pieces at once (the image and its
    mirror, ranges of joints; the same maps)."""
    if flipped is not None and flip_index is None:
        raise ValueError("flip test needs the keypoint set's flip index")
    if not _is_tensor(outputs[0]):
        return _merge_arrays(outputs, num_joints, size, flipped, flip_index, threads)
    k = num_joints
    hm, tag = _stage_average(outputs, k)
    heatmaps, tags = [hm], [tag]
    if flipped is not None:
        fi = list(flip_index)
        big = tuple(flipped[-1].shape[2:])
        back = [_flip(o if i == len(flipped) - 1 else _up(o, big)) for i, o in enumerate(flipped)]
        hm_f = 0
        for o in back:
            hm_f = hm_f + o[:, :k][:, fi]
        heatmaps.append(hm_f / len(back))
        tags.append(next(o[:, k:] for o in back if o.shape[1] > k)[:, fi])
    # one interpolation call for all maps (per-channel identical to separate calls)
    n = len(heatmaps)
    up = _up(_cat(heatmaps + tags), size)
    parts = [up[:, i : i + k] for i in range(0, up.shape[1], k)]
    return parts[:n], parts[n:]


def _merge_arrays(
    outputs: Sequence[np.ndarray],
    k: int,
    size: tuple[int, int],
    flipped: Sequence[np.ndarray] | None,
    flip_index: Sequence[int] | None,
    threads: int = 1,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """:func:`merge_outputs` for numpy outputs: the same operations on the same values in the same
    order (so the same bits, the sign of a zero sum aside), written into one buffer laid out as
    [heatmaps per flip, tags per flip] (the tags' channel blocks consecutive, so that
    :func:`aggregate` stacks them without a copy), each plane resized once and only when needed."""
    # float32 throughout (the buffer's type): cv2.resize given another type would not write into it
    outputs = [np.asarray(o, np.float32) for o in outputs]
    flipped = None if flipped is None else [np.asarray(o, np.float32) for o in flipped]
    views = [(outputs, None)] + ([] if flipped is None else [(flipped, list(flip_index))])
    n_flip = len(views)
    big = tuple(outputs[-1].shape[2:])
    final = tuple(size) == big
    n_img = outputs[0].shape[0]
    stage = np.empty((n_img, 2 * n_flip * k, *big), np.float32)
    if not _merge_compiled(views, k, stage, threads):
        _merge_views(views, k, stage)
    merged = stage if final else _up(stage, size)
    parts = [merged[:, i : i + k] for i in range(0, merged.shape[1], k)]
    return parts[:n_flip], parts[n_flip:]


def _merge_compiled(
    views: list[tuple[Sequence[np.ndarray], list[int] | None]], k: int, stage: np.ndarray, threads: int = 1
) -> bool:
    """:func:`_merge_views` in one compiled pass per plane (``litepose_merge_up2``: cv2.resize's
    bilinear 2x upsampling, bit for bit, fused with the average and the flip back) for the usual
    pair of outputs: K heatmaps + K tags at half the size of K heatmaps. With ``threads`` > 1 the
    views (image, mirror), and ranges of joints within each, run at once (disjoint parts of
    ``stage``). False (``stage`` left to :func:`_merge_views`) for other outputs, without the
    kernel, or when a value is not finite."""
    fn = kernel("litepose_merge_up2")
    if fn is None or not len(views[0][0][0]):
        return False
    n_img, n_flip, (hh, ww) = stage.shape[0], len(views), stage.shape[2:]
    plane = hh * ww
    ranges = even_ranges(k, min(threads, MAX_THREADS) // n_flip)  # joint ranges per view
    calls = []
    for f, (outs, fi) in enumerate(views):
        if len(outs) != 2:
            return False
        lo, hi = outs
        ok = lo.dtype == hi.dtype == np.float32 and lo.ndim == hi.ndim == 4 and len(lo) == len(hi) == n_img
        if not ok or lo.shape[1] < 2 * k or hi.shape[1] < k or (2 * lo.shape[2], 2 * lo.shape[3]) != (hh, ww):
            return False
        perm = np.arange(k, dtype=np.int64) if fi is None else np.asarray(fi, np.int64)
        if perm.shape != (k,) or perm.min() < 0 or perm.max() >= k:
            return False
        lo, hi = np.ascontiguousarray(lo), np.ascontiguousarray(hi)
        calls += [(lo, hi, perm[a:b], fi is not None, f * k + a, (n_flip + f) * k + a) for a, b in ranges]

    def merge(call: tuple[np.ndarray, np.ndarray, np.ndarray, bool, int, int]) -> int:
        lo, hi, perm, mirror, hm_at, tag_at = call  # output joints hm_at.. and tag_at.. of stage
        return fn(
            lo.ctypes.data, lo[0].size, hi.ctypes.data, hi[0].size, n_img, len(perm), k, lo.shape[2], lo.shape[3],
            perm.ctypes.data, mirror, stage.ctypes.data + 4 * hm_at * plane, stage.ctypes.data + 4 * tag_at * plane,
            stage[0].size,
        )  # fmt: skip

    if threads > 1:
        return all(rc == 0 for rc in in_threads(merge, calls))
    return all(merge(call) == 0 for call in calls)


def _merge_views(views: list[tuple[Sequence[np.ndarray], list[int] | None]], k: int, stage: np.ndarray) -> None:
    """The merge of :func:`_merge_arrays` into ``stage``, with numpy and cv2."""
    n_flip, big = len(views), stage.shape[2:]
    for f, (outs, fi) in enumerate(views):
        hm = stage[:, f * k : (f + 1) * k]
        tag = stage[:, (n_flip + f) * k : (n_flip + f + 1) * k]
        tag_src = next((i for i, o in enumerate(outs) if o.shape[1] > k), None)
        if tag_src is None:
            raise ValueError("the network outputs carry no tag channels (expected 2K channels in one output)")
        for i, o in enumerate(outs):
            last = i == len(outs) - 1
            if not last and i == 0:  # resized straight into place (flipped back and permuted)
                joints = list(range(k)) if fi is None else fi
                _resize_into(o, joints, hm, mirror=fi is not None)
                if i == tag_src:
                    _resize_into(o, [k + j for j in joints], tag, mirror=fi is not None)
                continue
            if not last:  # upsampled to the last output's size (heatmaps, and tags when it has them)
                o = _up(o[:, : 2 * k if i == tag_src else k], big)
            o = o[..., ::-1] if fi is not None else o  # flipped back, joints permuted below
            src_hm = o[:, :k] if fi is None else o[:, fi]
            if i == 0:
                np.copyto(hm, src_hm)
            else:
                np.add(hm, src_hm, out=hm)
            if i == tag_src:
                np.copyto(tag, o[:, k : 2 * k] if fi is None else o[:, [k + j for j in fi]])
        if len(outs) > 1:
            np.divide(hm, np.float32(len(outs)), out=hm)


def aggregate(
    per_scale: Sequence[tuple[float, list[Maps], list[Maps]]],
) -> tuple[Maps, Maps]:
    """Combine scales: ``[(scale, heatmaps per flip, tags per flip), ...]`` (in the original's
    order, largest scale first) -> heatmaps (N, K, H, W) and tags (N, K, H, W, L).

    Heatmaps: mean over flips, summed over scales, divided by the number of scales. Tags: those
    of scale 1.0 (or of the only scale), one channel per flip.
    """
    final = None
    tag_list: list[Maps] = []
    for s, heatmaps, tags in per_scale:
        if s == 1 or len(per_scale) == 1:
            tag_list.extend(tags)
        if len(heatmaps) == 2:
            avg = _mean2(*heatmaps)
        else:
            avg = heatmaps[0]
        final = avg if final is None else final + avg
    if final is None or not tag_list:
        raise ValueError("multi-scale test needs scale 1.0 among the scales (tags come from it)")
    if len(per_scale) > 1:  # (x / 1.0 is x: no copy for one scale)
        final = final / float(len(per_scale))
    return final, _stack_last(tag_list)


def _mean2(a: Maps, b: Maps) -> Maps:
    """(a + b) / 2: in one compiled pass for contiguous float32 arrays (the same float32 operations)."""
    fn = kernel("litepose_mean2") if not _is_tensor(a) else None
    if fn is not None and a.dtype == b.dtype == np.float32 and a.shape == b.shape:
        if a.flags.c_contiguous and b.flags.c_contiguous:
            out = np.empty_like(a)
            fn(a.ctypes.data, b.ctypes.data, a.size, out.ctypes.data)
            return out
    avg = a + b
    avg /= 2.0  # in place: the same bits as a new array
    return avg


def _stack_last(maps: list[Maps]) -> Maps:
    """Stack (N, K, H, W) maps into (N, K, H, W, L). When they are consecutive channel blocks of
    one array (as :func:`merge_outputs` makes them) this is a view, not a copy."""
    t0 = maps[0]
    if _is_tensor(t0):
        step = t0.shape[1] * t0.stride(1)
        consecutive = all(
            m.shape == t0.shape
            and m.stride() == t0.stride()
            and m.data_ptr() == t0.data_ptr() + i * step * t0.element_size()
            for i, m in enumerate(maps)
        )
        if consecutive:
            return t0.as_strided((*t0.shape, len(maps)), (*t0.stride(), step))
        import torch

        return torch.stack(maps, dim=2).permute(0, 1, 3, 4, 2)
    step = t0.shape[1] * t0.strides[1]
    at = t0.__array_interface__["data"][0]
    consecutive = all(
        m.shape == t0.shape and m.strides == t0.strides and m.__array_interface__["data"][0] == at + i * step
        for i, m in enumerate(maps)
    )
    if consecutive:
        return np.lib.stride_tricks.as_strided(t0, (*t0.shape, len(maps)), (*t0.strides, step), writeable=False)
    return np.stack(maps, axis=-1)


def to_image(keypoints: np.ndarray, geometry: ResizeGeometry, map_size: tuple[int, int]) -> np.ndarray:
    """Map (..., 3) keypoints from map pixels (``map_size`` = (width, height)) to image pixels;
    only x and y change."""
    m = geometry.matrix(map_size, inverse=True)
    out = np.array(keypoints, dtype=np.float32, copy=True)
    xy = keypoints[..., :2].astype(np.float64)
    out[..., :2] = xy @ m[:, :2].T + m[:, 2]
    return out
