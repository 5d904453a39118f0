"""Preprocessing: an image as the network takes it (resize, pad, normalise), as the original does.

1. :func:`resize_geometry` / :func:`resize_image`: keep the aspect ratio, short side to the
   model's input size (times the test scale), long side rounded up to a multiple of 64; the
   image is centred (the long side is padded symmetrically with black). :func:`square_geometry`:
   the letterbox of a network with one fixed input size (``litepose export --static``).
2. :func:`input_tensor` (torch backends) / :func:`input_array` (runtimes without torch): a batch
   of resized images to (N, 3, H, W) float32 through :func:`litepose.normalization.normalize`,
   the one formula (the original's, bit for bit on the torch backend; the numpy path gives the
   same bits).

The geometry also maps the decoder's keypoints back to the image
(:func:`litepose.decode.testtime.to_image`), which is why it sits below the decoder.

Size cap: a network input above :data:`MAX_INPUT_PIXELS` is refused by :func:`resize_geometry`,
before anything is allocated (a 1x20000 image at input size 256 would need a 256x5120000 input,
3.9 GB for the resized image alone).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .normalization import IMAGENET, Normalization, normalize

if TYPE_CHECKING:
    import torch

__all__ = [
    "MAX_INPUT_PIXELS",
    "ResizeGeometry",
    "resize_geometry",
    "square_geometry",
    "resize_image",
    "input_tensor",
    "input_array",
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
            f"{MAX_INPUT_PIXELS} pixels (litepose.preprocess.MAX_INPUT_PIXELS): use a smaller input size, "
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


def _batch(images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    return np.stack(list(images)) if not isinstance(images, np.ndarray) else images


def input_tensor(
    images: Sequence[np.ndarray] | np.ndarray,
    device: torch.device | str = "cpu",
    normalization: Normalization = IMAGENET,
) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32 tensor on ``device``, normalised
    (:func:`~litepose.normalization.normalize`)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(_batch(images))).to(device).permute(0, 3, 1, 2)
    return normalize(x, normalization)


@functools.lru_cache(maxsize=8)
def _lookup(normalization: Normalization) -> np.ndarray:
    """(3, 256) float32: :func:`~litepose.normalization.normalize` of every uint8 value per channel,
    computed by that function itself, so a lookup gives its bits."""
    values = np.broadcast_to(np.arange(256, dtype=np.uint8), (1, 3, 1, 256))
    return np.ascontiguousarray(normalize(values, normalization)[0, :, 0, :])


def input_array(images: Sequence[np.ndarray] | np.ndarray, normalization: Normalization = IMAGENET) -> np.ndarray:
    """:func:`input_tensor` in numpy, for the runtimes without torch: the same formula, the same bits,
    as a contiguous (N, 3, H, W) float32 array. uint8 pixels go through a per-channel lookup table
    of the formula's 256 results (several times faster than the arithmetic on every pixel)."""
    batch = _batch(images)
    if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[3] != 3:
        return np.ascontiguousarray(normalize(batch.transpose(0, 3, 1, 2), normalization))
    table = _lookup(normalization)
    n, h, w, _ = batch.shape
    out = np.empty((n, 3, h, w), np.float32)
    for i in range(n):
        for c, plane in enumerate(cv2.split(np.ascontiguousarray(batch[i]))):
            cv2.LUT(plane, table[c : c + 1], dst=out[i, c])
    return out
