"""Input normalisation, in one place: the statistics a network's input is standardised with.

Every LitePose model (the original's, the mmpose port's and litepose's own) takes RGB / 255
standardised with the ImageNet mean and std (:data:`IMAGENET`). :func:`normalize` is the one
formula: the training transform (:mod:`litepose.data.transforms`), the trainer's uint8 batches
(:func:`network_input`), the predictor's preprocessing on every backend and the int8 export's
calibration inputs (all through :mod:`litepose.preprocess`) call it. Checkpoints record the
statistics a model was trained with (``"normalization"`` in their metadata), and
:class:`~litepose.Predictor` normalises with the ones its checkpoint records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["MEAN", "STD", "Normalization", "IMAGENET", "normalize", "network_input"]

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


def normalize(images: Any, norm: Normalization = IMAGENET) -> Any:
    """uint8 RGB ``images`` (..., 3, H, W), a numpy array or a torch tensor -> float32 of the same
    kind (and memory layout, and device), ``(rgb / 255 - mean) / std`` per channel.

    The one formula, for training and inference alike: float32 throughout, one division by 255,
    one subtraction of the mean and one division by the std, in that order, each rounded once, as
    the original's ``ToTensor`` + ``Normalize`` compute it. So the network input of the torch
    backend is bit-identical to the original's, the numpy path (runtimes without torch) gives the
    same bits as the torch path, and the training transform gives the same bits as
    :func:`network_input` (a multiply by ``1 / (255 * std)`` and a subtraction would be one
    operation fewer, but rounds differently: up to a few ulps off the original's input).
    """
    if type(images).__module__.startswith("torch"):
        import torch

        # a float32 copy that keeps the layout (a permuted batch stays channels-last)
        return _normalize_float_(images.to(dtype=torch.float32, copy=True), norm)
    import numpy as np

    x = np.asarray(images).astype(np.float32)  # a copy that keeps the layout (order="K")
    x /= np.float32(255)
    x -= np.asarray(norm.mean, np.float32)[:, None, None]
    x /= np.asarray(norm.std, np.float32)[:, None, None]
    return x


def _normalize_float_(x: Any, norm: Normalization) -> Any:
    """:func:`normalize`'s arithmetic, in place, on a float32 torch tensor of uint8 values."""
    import torch

    def per_channel(values: tuple[float, ...]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float32, device=x.device).view(-1, 1, 1)

    # 255 as a tensor on x's device, not a Python number: CUDA divides by a number as a multiply
    # by its reciprocal, which rounds differently from the CPU's (and numpy's) true division
    x.div_(per_channel((255.0,)))
    x.sub_(per_channel(norm.mean))
    return x.div_(per_channel(norm.std))


def network_input(images: Any, norm: Normalization = IMAGENET) -> Any:
    """A training batch as the network takes it: float32, channels_last.

    ``images`` (B, 3, H, W) is either uint8 RGB, normalised here with :func:`normalize` as the
    training transform (:class:`~litepose.data.transforms.TrainTransform`) does, so both give
    equal bits, or float32 already normalised (only laid out channels_last). Training sends
    uint8 batches from its loader (a quarter of the bytes) and normalises them here, on the
    training device.
    """
    import torch

    if images.dtype == torch.uint8:
        # one copy: uint8 -> float32 laid out channels_last, then normalised in place
        return _normalize_float_(images.to(dtype=torch.float32, memory_format=torch.channels_last), norm)
    if not images.is_floating_point():
        raise TypeError(f"images must be uint8 or floating point, got {images.dtype}")
    return images.contiguous(memory_format=torch.channels_last)
