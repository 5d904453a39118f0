"""Training transform: random affine + flip on image, ignore mask and joints, then targets.

The original's recipe (HigherHRNet / LitePose ``RandomAffineTransform`` + ``RandomHorizontalFlip``):

- a square crop of side ``short_side * s`` (s uniform in ``[min_scale, max_scale]``, default
  0.75..1.5) centred on the image centre shifted by an integer (dx, dy) uniform in
  ``[-t, t)`` with ``t = max_translate * short_side * s / 200`` image pixels (the original
  measures translation in units of its 200-pixel reference box: 40 -> up to 20% of the crop),
  rotated by r uniform in ``[-max_rotation, max_rotation]`` degrees (default 30), is warped
  with OpenCV (bilinear, zero border) to ``input_size`` and, for the targets, to each output
  size ``input_size / stride`` (strides 4 and 2: 64 and 128 for 256);
- with probability ``flip_prob`` (0.5) the result is mirrored: image and masks flipped, joints
  permuted by the keypoint set's flip index and mirrored;
- the mask (True = counted) is warped per output size (values > 0.5 after bilinear warping
  are kept); pixels outside the source image come out 0 (ignored), as in the original;
- targets per output size: :func:`~litepose.data.targets.render_heatmaps` (sigma 2) and
  :func:`~litepose.data.targets.joints_table` (30 people);
- the image becomes float32 CHW, RGB/255 normalised with ImageNet mean / std
  (:func:`litepose.normalization.normalize`, the original's formula, which inference uses too).

litepose folds the flip into the affine matrix (one warp instead of warp + copy), which samples
the same source positions. ``input_size`` can change per call (supernet training samples 256..512
step 64); output sizes follow as ``input_size / stride``.

Deliberate difference: the original mirrors joints at output resolution R as ``x -> R - 1 - x``
while the image is mirrored at input size S as ``u -> S - 1 - u``; since ``x = u / stride`` the
flipped targets land ``1 - 1/stride`` output pixels (3 input pixels at stride 4) left of the
image content in every flipped sample. litepose mirrors at input size and scales
(``x -> R - 1/stride - x``), so targets and image stay aligned; ``legacy_flip=True`` restores
the original.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..normalization import normalize
from .targets import joints_table, render_heatmaps

__all__ = ["Augmentation", "TransformConfig", "TrainTransform", "affine_matrix", "apply_affine"]


@dataclass(frozen=True)
class Augmentation:
    """The random augmentation of training samples, by the one set of names litepose uses for it
    (here, in :class:`TransformConfig`, and as the ``augment`` section of a training config).
    Defaults: the original training recipe."""

    max_rotation: float = 30.0  # degrees, r uniform in [-max_rotation, max_rotation]
    min_scale: float = 0.75  # crop side = short side * s, s uniform in [min_scale, max_scale]
    max_scale: float = 1.5
    max_translate: float = 40.0  # in units of the original's 200-pixel box (module docstring)
    flip_prob: float = 0.5  # probability of a horizontal flip


@dataclass(frozen=True)
class TransformConfig(Augmentation):
    """Augmentation (the fields of :class:`Augmentation`) and target settings (defaults: the
    original training recipe)."""

    input_size: int = 256
    strides: tuple[int, ...] = (4, 2)
    sigma: float = 2.0
    max_people: int = 30
    legacy_table: bool = False
    legacy_flip: bool = False
    normalize: bool = True

    def __post_init__(self) -> None:
        if self.min_scale <= 0 or self.max_scale < self.min_scale:
            raise ValueError(f"scale range {self.min_scale}..{self.max_scale} is invalid")
        if not 0.0 <= self.flip_prob <= 1.0:
            raise ValueError(f"flip_prob {self.flip_prob} is not a probability")
        if self.max_people < 1:
            raise ValueError("max_people must be >= 1")
        check_input_size(self.input_size, self.strides)

    @classmethod
    def no_augmentation(cls, **kw: Any) -> TransformConfig:
        """Centre crop of the short side, no rotation, translation or flip (for checks and val loss)."""
        base = {"max_rotation": 0.0, "min_scale": 1.0, "max_scale": 1.0, "max_translate": 0.0, "flip_prob": 0.0}
        return cls(**{**base, **kw})


def check_input_size(input_size: int, strides: tuple[int, ...]) -> None:
    if input_size < 1 or any(input_size % s for s in strides):
        raise ValueError(f"input size {input_size} must be a positive multiple of the strides {tuple(strides)}")


def affine_matrix(
    center: tuple[float, float], size: float, res: int, rotation: float = 0.0, flip: bool = False
) -> np.ndarray:
    """(2, 3) float64 matrix mapping image pixels to a ``res`` square.

    The square of side ``size`` centred at ``center`` maps onto ``[0, res]^2``, then the result is
    rotated by ``rotation`` degrees about the square's centre (the original's sign convention:
    positive = the content turns counter-clockwise on screen) and mirrored (``x -> res - 1 - x``) if
    ``flip``; the original's matrix with the flip folded in.
    """
    s = res / size
    m = np.array([[s, 0.0, res * (0.5 - center[0] / size)], [0.0, s, res * (0.5 - center[1] / size)], [0.0, 0.0, 1.0]])
    if rotation:
        a = -math.radians(rotation)
        cs, sn = math.cos(a), math.sin(a)
        h = res / 2
        rot = np.array([[cs, -sn, h - cs * h + sn * h], [sn, cs, h - sn * h - cs * h], [0.0, 0.0, 1.0]])
        m = rot @ m
    if flip:
        m = np.array([[-1.0, 0.0, res - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ m
    return m[:2]


def apply_affine(points: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) matrix to the last axis (x, y) of ``points`` (..., 2)."""
    return points @ mat[:, :2].T + mat[:, 2]


class TrainTransform:
    """Callable turning (image, mask, joints) into one training sample (see the module docstring).

    ``flip_index`` comes from the dataset's :class:`~litepose.data.keypoints.KeypointSet`.
    """

    def __init__(self, config: TransformConfig, flip_index: tuple[int, ...] | list[int]) -> None:
        self.config = config
        self.flip_index = np.asarray(flip_index, dtype=np.int64)

    def sample_params(self, height: int, width: int, rng: np.random.Generator) -> dict[str, Any]:
        """Draw the random affine: ``center``, ``size`` (crop side, image px), ``rotation``, ``flip``."""
        c = self.config
        scale = rng.uniform(c.min_scale, c.max_scale) if c.max_scale > c.min_scale else c.min_scale
        size = min(height, width) * scale
        rotation = rng.uniform(-c.max_rotation, c.max_rotation) if c.max_rotation > 0 else 0.0
        cx, cy = width / 2, height / 2
        t = int(c.max_translate * size / 200)
        if t > 0:
            cx += int(rng.integers(-t, t))
            cy += int(rng.integers(-t, t))
        flip = bool(rng.random() < c.flip_prob) if c.flip_prob > 0 else False
        return {"center": (cx, cy), "size": size, "rotation": float(rotation), "flip": flip}

    def __call__(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        joints: np.ndarray,
        rng: np.random.Generator,
        input_size: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Return ``{"image", "heatmaps", "masks", "joints", "joints_out"}`` as numpy arrays.

        ``image`` RGB uint8 (H, W, 3); ``mask`` (H, W) bool (True = counted) or None; ``joints``
        (P, K, 3) image pixels. ``heatmaps`` / ``masks`` / ``joints`` (tables) / ``joints_out``
        (transformed (P, K, 3) joints) are lists, one entry per output size (largest stride first).
        """
        import cv2

        c = self.config
        size_in = c.input_size if input_size is None else int(input_size)
        check_input_size(size_in, c.strides)
        h, w = image.shape[:2]
        p = self.sample_params(h, w, rng) if params is None else params
        args = (p["center"], p["size"])
        m_in = affine_matrix(*args, size_in, p["rotation"], p["flip"])
        img = cv2.warpAffine(image, m_in, (size_in, size_in), flags=cv2.INTER_LINEAR)
        joints = np.asarray(joints, dtype=np.float64)
        if p["flip"]:
            joints = joints[:, self.flip_index]
        mask_u8 = None if mask is None or mask.all() else mask.astype(np.uint8) * 255
        out: dict[str, Any] = {"heatmaps": [], "masks": [], "joints": [], "joints_out": []}
        for stride in c.strides:
            res = size_in // stride
            if c.legacy_flip:
                m = affine_matrix(*args, res, p["rotation"], p["flip"])
            else:  # the input-size geometry, scaled: targets stay aligned with the image when flipped
                m = m_in / stride
            src = mask_u8 if mask_u8 is not None else np.full((h, w), 255, np.uint8)
            mk = cv2.warpAffine(src, m, (res, res), flags=cv2.INTER_LINEAR) > 127
            j = joints.copy()
            j[..., :2] = apply_affine(joints[..., :2], m)
            out["heatmaps"].append(render_heatmaps(j, res, c.sigma, joints.shape[1]))
            out["masks"].append(mk.astype(np.float32))
            out["joints"].append(joints_table(j, res, c.max_people, c.legacy_table))
            out["joints_out"].append(j)
        chw = np.stack(cv2.split(img))  # uint8 planes: the cheap way to go from HWC to CHW
        out["image"] = normalize(chw) if c.normalize else chw
        out["params"] = p
        return out
