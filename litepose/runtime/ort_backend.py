"""ONNX Runtime backend: an exported ``.onnx`` file (fp32 or int8), no torch needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import one_line
from .base import ArrayBackend, missing
from .metadata import from_strings

__all__ = ["OnnxRuntimeBackend"]


class OnnxRuntimeBackend(ArrayBackend):
    """An ONNX file run by ONNX Runtime on the CPU, ``threads`` intra-op threads (default: its own)."""

    name = "onnxruntime"

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise missing("onnxruntime", "runtime", f"{path}: running an ONNX file") from None
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for unreadable files
            raise ValueError(f"{path}: ONNX Runtime cannot load it ({one_line(str(e), 300)})") from None
        super().__init__(from_strings(self.session.get_modelmeta().custom_metadata_map, str(path)))
        inp = self.session.get_inputs()[0]
        self._input = inp.name
        h, w = inp.shape[2:4]
        if isinstance(h, int) and h == w:
            self.static_size = h
        self.path = Path(path)

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self._input: x})
