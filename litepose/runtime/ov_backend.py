"""OpenVINO backend: an OpenVINO IR (``.xml`` + ``.bin``) or an ``.onnx`` file, fp32 or int8; no torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .base import ArrayBackend, missing
from .metadata import from_strings

__all__ = ["OpenVinoBackend", "read_rt_info"]

RT_SECTION = "litepose"


def read_rt_info(model: Any) -> dict[str, str]:
    """The litepose metadata of an OpenVINO model (``rt_info["litepose"]``), as strings."""
    if not model.has_rt_info([RT_SECTION]):
        return {}
    section = model.get_rt_info([RT_SECTION])
    return {str(k): str(v.astype(str) if hasattr(v, "astype") else v) for k, v in section.astype(dict).items()}


def _onnx_metadata(path: Path) -> dict[str, str]:
    """metadata_props of an ONNX file, read with onnx when installed, else with ONNX Runtime."""
    try:
        import onnx

        m = onnx.load(str(path), load_external_data=False)
        return {p.key: p.value for p in m.metadata_props}
    except ImportError:
        pass
    try:
        import onnxruntime as ort
    except ImportError:
        raise missing("onnx", "export", f"{path}: reading an ONNX file's metadata for OpenVINO") from None
    return dict(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map)


class OpenVinoBackend(ArrayBackend):
    """A network compiled by OpenVINO for the CPU (latency hint), ``threads`` inference threads."""

    name = "openvino"

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise missing("openvino", "openvino", f"{path}: running with OpenVINO") from None
        self.path = Path(path)
        core = ov.Core()
        try:
            model = core.read_model(str(path))
        except Exception as e:
            raise ValueError(f"{path}: OpenVINO cannot read it ({str(e).splitlines()[0][:200]})") from None
        props = read_rt_info(model) if self.path.suffix.lower() == ".xml" else _onnx_metadata(self.path)
        super().__init__(from_strings(props, str(path)))
        # f32 explicitly: on CPUs with AVX-512 BF16 or AMX OpenVINO otherwise runs float layers in
        # bf16 by default (outputs off by up to ~0.3 from PyTorch's); int8 layers stay int8
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        shape = model.inputs[0].get_partial_shape()
        if shape.rank.is_static and shape[2].is_static and shape[3].is_static and shape[2] == shape[3]:
            self.static_size = shape[2].get_length()
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        self.request.infer({0: x})
        return [self.request.get_output_tensor(i).data.copy() for i in range(len(self.compiled.outputs))]
