"""Input normalisation, in one place: the statistics a network's input is standardised with.

Every LitePose model (the original's, the mmpose port's and litepose's own) takes RGB / 255
standardised with the ImageNet mean and std (:data:`IMAGENET`). Training
(:mod:`litepose.data.transforms`) and test time (:mod:`litepose.decode.testtime`) use these
constants, checkpoints record the statistics a model was trained with (``"normalization"`` in
their metadata), and :class:`~litepose.Predictor` normalises with the ones its checkpoint records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["MEAN", "STD", "Normalization", "IMAGENET", "network_input", "uint8_affine"]

#: ImageNet statistics of RGB / 255 (per channel, R G B).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Normalization:
    """Per-channel (R, G, B) mean and std of RGB / 255: the input is ``(rgb / 255 - mean) / std``."""

    mean: tuple[float, float, float] = MEAN
    std: tuple[float, float, float] = STD

    def __post_init__(self) -> None:
        mean = tuple(float(v) for v in self.mean)
        std = tuple(float(v) for v in self.std)
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f"normalization needs 3 means and 3 stds (R, G, B), got {list(mean)} and {list(std)}")
        if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in mean):
            raise ValueError(f"normalization mean {list(mean)} must lie in [0, 1] (statistics of RGB / 255)")
        if not all(math.isfinite(v) and v > 0.0 for v in std):
            raise ValueError(f"normalization std {list(std)} must be positive")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Normalization:
        """From a checkpoint's ``{"mean": [...], "std": [...]}`` (``None``: ImageNet's)."""
        if d is None:
            return IMAGENET
        if not isinstance(d, dict) or "mean" not in d or "std" not in d:
            raise ValueError(f"normalization must be a mapping with 'mean' and 'std', got {d!r}")
        return cls(tuple(d["mean"]), tuple(d["std"]))

    def to_dict(self) -> dict[str, list[float]]:
        """Plain lists (``weights_only``-safe, JSON-safe)."""
        return {"mean": list(self.mean), "std": list(self.std)}


IMAGENET = Normalization()


def uint8_affine(norm: Normalization = IMAGENET) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(scale, shift)`` per channel, float32 values: training normalises uint8 RGB as
    ``v * scale - shift`` in float32, one multiply and one subtract (the training transform and
    :func:`network_input` both use these, so they give equal bits)."""
    import numpy as np

    scale = tuple(float(np.float32(1 / (255 * s))) for s in norm.std)
    shift = tuple(float(np.float32(m / s)) for m, s in zip(norm.mean, norm.std))
    return scale, shift


def network_input(images: Any, norm: Normalization = IMAGENET) -> Any:
    """A batch as the network takes it: float32, channels_last.

    ``images`` (B, 3, H, W) is either uint8 RGB, normalised here with :func:`uint8_affine` as the
    training transform (:class:`~litepose.data.transforms.TrainTransform`) does, so both give
    equal bits, or float32 already normalised (only laid out channels_last). Training sends
    uint8 batches from its loader (a quarter of the bytes) and normalises them here, on the
    training device.
    """
    import torch

    if images.dtype == torch.uint8:
        scale, shift = uint8_affine(norm)
        x = images.to(dtype=torch.float32, memory_format=torch.channels_last)
        view = (1, 3, 1, 1)
        x.mul_(torch.tensor(scale, device=x.device).view(view))
        return x.sub_(torch.tensor(shift, device=x.device).view(view))
    if not images.is_floating_point():
        raise TypeError(f"images must be uint8 or floating point, got {images.dtype}")
    return images.contiguous(memory_format=torch.channels_last)
