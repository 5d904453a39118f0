"""The test-time chain around the grouping decoder, as the original computes it.

1. :func:`resize_geometry` / :func:`resize_image`: keep the aspect ratio, short side to the
   model's input size (times the test scale), long side rounded up to a multiple of 64; the
   image is centred (the long side is padded symmetrically with black).
2. :func:`normalize`: RGB / 255, then the model's mean / std (:mod:`litepose.normalization`;
   ImageNet's for every LitePose model).
3. :func:`merge_outputs`: the network's outputs (1/4 resolution: K heatmaps + K tags,
   1/2 resolution: K heatmaps) are upsampled (bilinear, ``align_corners=False``) to the largest
   output and their heatmaps averaged; with flip test, the flipped outputs are flipped back and
   their joints permuted by the flip index; then heatmaps and tags are upsampled to the resized
   input size. Tags are therefore upsampled twice (1/4 -> 1/2 -> input), as in the original.
4. :func:`aggregate`: heatmaps averaged over flips and scales; tags (from scale 1.0) stacked,
   one channel per flip.
5. :func:`to_image`: inverse of the resize, applied to x and y only.

Floating-point operations follow the original's order so that results match it closely.

Every step takes numpy arrays or torch tensors alike (torch is imported only for tensors), so
that a runtime without torch (ONNX Runtime, OpenVINO) runs the same chain: tensors are
interpolated by ``torch.nn.functional.interpolate``, arrays by ``cv2.resize`` (the same
half-pixel bilinear rule, equal within float rounding).

The fast chain (``Predictor(chain="fast")``) calls :func:`merge_outputs` with the size of the
network's 1/2-resolution output instead of the input size: the maps are grouped where the
network computed them, 4x fewer pixels, and :func:`to_image` maps from that size.

Size cap: a network input above :data:`MAX_INPUT_PIXELS` is refused by :func:`resize_geometry`,
before anything is allocated (a 1x20000 image at input size 256 would need a 256x5120000 input,
3.9 GB for the resized image alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from ..normalization import IMAGENET, Normalization

if TYPE_CHECKING:
    import torch

#: Maps of either kind: a numpy array or a torch tensor.
Maps = Any

__all__ = [
    "MAX_INPUT_PIXELS",
    "ResizeGeometry",
    "resize_geometry",
    "square_geometry",
    "resize_image",
    "normalize",
    "normalize_array",
    "merge_outputs",
    "aggregate",
    "to_image",
]


#: The largest network input (width x height) the resize makes: 2**22 pixels, e.g. 2048x2048 or
#: 1024x4096. The maps the decoder works on have this size too (K heatmaps and tags per flip, in
#: float32: about 1 GB at the cap), so beyond it a run would exhaust memory rather than finish.
MAX_INPUT_PIXELS = 2**22


@dataclass(frozen=True)
class ResizeGeometry:
    """Where an image lands in the network input.

    ``size`` = (width, height) of the resized input; ``center`` = image centre in pixels (as
    integers, the original's rounding); ``src_size`` = (width, height) of the image region that
    maps onto ``size`` (the original's ``scale * 200``).
    """

    size: tuple[int, int]
    center: tuple[float, float]
    src_size: tuple[float, float]

    def matrix(self, out_size: tuple[int, int] | None = None, inverse: bool = False) -> np.ndarray:
        """2x3 affine matrix image -> ``out_size`` (default ``size``), or its inverse.

        Built like the original (three float32 point pairs through ``cv2.getAffineTransform``)
        so that the warped input is bit-identical.
        """
        dst_w, dst_h = out_size or self.size
        src_w = self.src_size[0]
        c = np.array(self.center, np.float32)
        src = np.zeros((3, 2), np.float32)
        dst = np.zeros((3, 2), np.float32)
        src[0] = c
        src[1] = c + np.array([0.0, src_w * -0.5], np.float32)
        dst[0] = [dst_w * 0.5, dst_h * 0.5]
        dst[1] = dst[0] + np.array([0.0, dst_w * -0.5], np.float32)
        for pts in (src, dst):  # third point: the second turned 90 degrees about the first
            d = pts[0] - pts[1]
            pts[2] = pts[1] + np.array([-d[1], d[0]], np.float32)
        return cv2.getAffineTransform(dst, src) if inverse else cv2.getAffineTransform(src, dst)


def resize_geometry(
    height: int, width: int, input_size: int, scale: float = 1.0, min_scale: float = 1.0
) -> ResizeGeometry:
    """Input geometry of an image for one test scale (the original's rounding, exactly); a network
    input above :data:`MAX_INPUT_PIXELS` is a ValueError."""
    center = (float(int(width / 2.0 + 0.5)), float(int(height / 2.0 + 0.5)))
    min_input = int((min_scale * input_size + 63) // 64 * 64)
    if width < height:
        w_res = int(min_input * scale / min_scale)
        h_res = int(int((min_input / width * height + 63) // 64 * 64) * scale / min_scale)
        scale_w = width / 200.0
        scale_h = h_res / w_res * width / 200.0
    else:
        h_res = int(min_input * scale / min_scale)
        w_res = int(int((min_input / height * width + 63) // 64 * 64) * scale / min_scale)
        scale_h = height / 200.0
        scale_w = w_res / h_res * height / 200.0
    if w_res * h_res > MAX_INPUT_PIXELS:
        at = f"input size {input_size}" + (f", scale {scale:g}" if scale != 1 else "")
        raise ValueError(
            f"a {width}x{height} image at {at} needs a {w_res}x{h_res} network input, above the limit of "
            f"{MAX_INPUT_PIXELS} pixels (litepose.decode.testtime.MAX_INPUT_PIXELS): use a smaller input size, "
            "or crop an image this elongated"
        )
    return ResizeGeometry((w_res, h_res), center, (scale_w * 200.0, scale_h * 200.0))


def square_geometry(height: int, width: int, size: int) -> ResizeGeometry:
    """The geometry of a network with a fixed ``size`` x ``size`` input (``litepose export --static``):
    the whole image, its long side to ``size``, centred, the short side padded with black."""
    side = float(max(width, height))
    center = (float(int(width / 2.0 + 0.5)), float(int(height / 2.0 + 0.5)))
    return ResizeGeometry((size, size), center, (side, side))


def resize_image(image: np.ndarray, geometry: ResizeGeometry) -> np.ndarray:
    """Warp ``image`` (H, W, 3) into the network input of ``geometry`` (bilinear, black border)."""
    return cv2.warpAffine(image, geometry.matrix(), geometry.size)


def normalize(
    images: Sequence[np.ndarray] | np.ndarray,
    device: torch.device | str = "cpu",
    normalization: Normalization = IMAGENET,
) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32 tensor on ``device``, ``(rgb / 255 - mean) / std``."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(np.stack(list(images)) if not isinstance(images, np.ndarray) else images))
    x = x.to(device).permute(0, 3, 1, 2).float().div(255)
    mean = torch.as_tensor(normalization.mean, dtype=torch.float32, device=x.device)[:, None, None]
    std = torch.as_tensor(normalization.std, dtype=torch.float32, device=x.device)[:, None, None]
    return x.sub_(mean).div_(std)


def normalize_array(images: Sequence[np.ndarray] | np.ndarray, normalization: Normalization = IMAGENET) -> np.ndarray:
    """:func:`normalize` in numpy, for the runtimes without torch: the same float32 operations in the
    same order, so the result is bit-identical."""
    x = np.stack(list(images)) if not isinstance(images, np.ndarray) else images
    x = x.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
    x -= np.asarray(normalization.mean, np.float32)[:, None, None]
    x /= np.asarray(normalization.std, np.float32)[:, None, None]
    return x


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
    for i in range(n):  # plane by plane: contiguous in and out, faster than one many-channel call
        for j in range(c):
            cv2.resize(np.ascontiguousarray(x[i, j]), (size[1], size[0]), dst=out[i, j], interpolation=cv2.INTER_LINEAR)
    return out


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
) -> tuple[list[Maps], list[Maps]]:
    """One scale's outputs -> (heatmaps per flip, tags per flip), each (N, K, H, W) at ``size``
    = (height, width): the resized input's (the original chain) or the network's 1/2-resolution
    output's (the fast chain). ``flipped`` are the outputs for the mirrored input."""
    k = num_joints
    hm, tag = _stage_average(outputs, k)
    heatmaps, tags = [hm], [tag]
    if flipped is not None:
        if flip_index is None:
            raise ValueError("flip test needs the keypoint set's flip index")
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
        avg = (heatmaps[0] + heatmaps[1]) / 2.0 if len(heatmaps) == 2 else heatmaps[0]
        final = avg if final is None else final + avg
    if final is None or not tag_list:
        raise ValueError("multi-scale test needs scale 1.0 among the scales (tags come from it)")
    final = final / float(len(per_scale))
    return final, _stack_last(tag_list)


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
