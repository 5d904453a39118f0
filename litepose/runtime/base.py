"""The backend interface :class:`~litepose.Predictor` runs its network through (torch-free)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..preprocess import input_array
from .metadata import ModelInfo

__all__ = ["Backend", "ArrayBackend", "MissingPackageError", "missing"]


class MissingPackageError(ValueError):
    """An optional package (a runtime, an exporter) is not installed: a one-line error in the CLI."""


def missing(package: str, extra: str, what: str) -> MissingPackageError:
    """The error for an optional package that is not installed, saying how to install it."""
    return MissingPackageError(f"{what} needs the '{package}' package: pip install 'litepose[{extra}]'")


class Backend:
    """A network and what pre- and post-processing need to know about it.

    ``name``: the backend (``torch``, ``torch-eager``, ``torchscript``, ``onnxruntime``,
    ``openvino``); ``precision``: ``fp32`` or ``int8``; ``info``: :class:`ModelInfo`;
    ``model``: the torch module given (torch backends only, else ``None``).
    """

    name = "?"
    precision = "fp32"
    model: Any = None
    #: the one input size (H = W) of a network exported with ``--static``, else None (any size)
    static_size: int | None = None

    def __init__(self, info: ModelInfo) -> None:
        self.info = info
        self.precision = info.precision

    def inputs(self, images: np.ndarray) -> Any:
        """(N, H, W, 3) uint8 RGB -> the normalised network input, in the backend's array type."""
        return input_array(images, self.info.normalization)

    def run(self, x: Any, flip: bool) -> tuple[list[Any], list[Any] | None]:
        """The network's two raw outputs for ``x``, and with ``flip`` those of the mirrored input too
        (one batch of 2N: per-sample results equal two calls)."""
        raise NotImplementedError

    def sync(self) -> None:
        """Wait for queued device work (a CUDA network), so that stage timings are true."""

    def describe(self) -> str:
        return f"{self.name} {self.precision}"


class ArrayBackend(Backend):
    """A backend whose network takes and returns numpy arrays (ONNX Runtime, OpenVINO)."""

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    def run(self, x: np.ndarray, flip: bool) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        if not flip:
            return self.forward(np.ascontiguousarray(x)), None
        n = len(x)
        both = self.forward(np.concatenate([x, x[..., ::-1]]))
        return [o[:n] for o in both], [o[n:] for o in both]
