"""OpenVINO backend: an OpenVINO IR (``.xml`` + ``.bin``) or an ``.onnx`` file, fp32 or int8; no torch.

A file of ``litepose export`` carries litepose's metadata (:mod:`litepose.runtime.metadata`). An IR
without it (a third party's conversion, such as the original authors' LitePose-Auto-S of the
``litepose-auto-s-coco`` weights) is accepted when its outputs have LitePose's shapes, found by shape,
not by order or name: the map of 2K channels at 1/4 of the input is the low-resolution heatmaps and
tags, the map of K channels at 1/2 the high-resolution heatmaps. Such an IR is taken to follow the
OpenVINO convention, the one its publisher describes for LitePose-Auto-S: it takes raw BGR 0..255
(N, 3, H, W) and normalises inside its graph, so litepose feeds it BGR pixels and applies no
normalisation of its own. Its keypoint set is the built-in one for K joints (COCO for 17).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..data.keypoints import keypoint_set_for
from ..errors import one_line
from .base import ArrayBackend, missing
from .metadata import ModelInfo, from_strings

__all__ = ["OpenVinoBackend", "read_rt_info", "litepose_outputs"]

RT_SECTION = "litepose"
_KEY_PREFIX = "litepose."


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


def _dims(shape: Any) -> list[int | None]:
    """An OpenVINO partial shape as a list, None for each dynamic dimension (and for a dynamic rank)."""
    if not shape.rank.is_static:
        return []
    return [d.get_length() if d.is_static else None for d in shape]


def litepose_outputs(input_shape: list[int | None], output_shapes: list[list[int | None]]) -> tuple[int, int, int]:
    """``(K, index of the 1/4-resolution output, index of the 1/2-resolution output)`` when the shapes are
    LitePose's: two (N, C, H, W) outputs, one of 2K channels at a quarter of the input's H and W, one
    of K channels at half of it (sizes checked where they are static); else a ValueError saying why."""
    if len(input_shape) != 4 or input_shape[1] != 3:
        raise ValueError(f"its input {input_shape} is not (N, 3, H, W)")
    if len(output_shapes) != 2 or any(len(s) != 4 or s[1] is None for s in output_shapes):
        raise ValueError(f"its outputs {output_shapes} are not two (N, C, H, W) maps")
    for low, high in ((0, 1), (1, 0)):
        lo, hi = output_shapes[low], output_shapes[high]
        if hi[1] < 1 or lo[1] != 2 * hi[1]:
            continue
        sizes_fit = True
        for axis in (2, 3):
            size, q, h = input_shape[axis], lo[axis], hi[axis]
            if size is not None and ((q is not None and q * 4 != size) or (h is not None and h * 2 != size)):
                sizes_fit = False
            if q is not None and h is not None and h != 2 * q:
                sizes_fit = False
        if sizes_fit:
            return hi[1], low, high
    raise ValueError(
        f"its outputs {output_shapes} for the input {input_shape} are not LitePose's (one map of 2K channels "
        "at 1/4 of the input, one of K channels at 1/2)"
    )


class OpenVinoBackend(ArrayBackend):
    """A network compiled by OpenVINO for the CPU (latency hint), ``threads`` inference threads.

    ``raw_bgr``: the network takes raw BGR 0..255 and normalises inside (an IR without litepose
    metadata); ``batch``: its fixed batch size, else None (a larger batch runs in parts)."""

    name = "openvino"

    def __init__(self, path: str | Path, threads: int | None = None, *, bf16: bool = False) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise missing("openvino", "openvino", f"{path}: running with OpenVINO") from None
        self.path = Path(path)
        core = ov.Core()
        try:
            model = core.read_model(str(path))
        except Exception as e:
            raise ValueError(f"{path}: OpenVINO cannot read it ({one_line(str(e), 400)})") from None
        is_ir = self.path.suffix.lower() == ".xml"
        props = read_rt_info(model) if is_ir else _onnx_metadata(self.path)
        in_shape = _dims(model.inputs[0].get_partial_shape()) if len(model.inputs) == 1 else []
        #: output indices in litepose's order (1/4 resolution first): an IR without metadata, found by shape
        self._order: tuple[int, int] | None = None
        self.raw_bgr = is_ir and not any(k.startswith(_KEY_PREFIX) for k in props)
        if self.raw_bgr:
            info = self._bare_info(model, in_shape)
        else:
            info = from_strings(props, str(path))
        super().__init__(info)
        # f32 explicitly unless bf16 is asked for: on CPUs with AVX-512 BF16 or AMX OpenVINO otherwise
        # runs float layers in bf16 by default (outputs off by up to ~0.3 from PyTorch's); int8 stays int8
        hint = "bf16" if bf16 else "f32"
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": hint}
        if bf16:
            self.precision = "bf16" if info.precision == "fp32" else f"{info.precision}+bf16"
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        if len(in_shape) == 4 and in_shape[2] is not None and in_shape[2] == in_shape[3]:
            self.static_size = in_shape[2]
        self.batch = in_shape[0] if in_shape else None
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self._core, self._model, self._config = core, model, config
        #: flip test: the image and its mirror as two requests on two streams, compiled on first use
        self._pair: tuple[Any, Any] | None = None
        self._threads = int(threads) if threads else (os.cpu_count() or 1)

    def _bare_info(self, model: Any, in_shape: list[int | None]) -> ModelInfo:
        """What an IR without litepose metadata is, from its shapes (a clear error when not LitePose's)."""
        outs = [_dims(o.get_partial_shape()) for o in model.outputs]
        try:
            k, low, high = litepose_outputs(in_shape, outs)
        except ValueError as e:
            raise ValueError(
                f"{self.path}: carries no litepose metadata, and {e}: export it with 'litepose export'"
            ) from None
        self._order = (low, high)
        int8 = any(op.get_type_name() == "FakeQuantize" for op in model.get_ops())
        size = in_shape[2] if in_shape[2] is not None and in_shape[2] == in_shape[3] else None
        return ModelInfo(k, keypoint_set_for(k), input_size=size, arch="unknown", precision="int8" if int8 else "fp32")

    def inputs(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> the network input: normalised (litepose's metadata), or, for an
        IR without it, the raw BGR pixels 0..255 as float32 (N, 3, H, W)."""
        if not self.raw_bgr:
            return super().inputs(images)
        x = np.stack(list(images)) if not isinstance(images, np.ndarray) else images
        return np.ascontiguousarray(x[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)

    def _outputs(self, request: Any) -> list[np.ndarray]:
        out = [request.get_output_tensor(i).data.copy() for i in range(len(self.compiled.outputs))]
        return out if self._order is None else [out[i] for i in self._order]

    def _infer(self, x: np.ndarray) -> list[np.ndarray]:
        self.request.infer({0: x})
        return self._outputs(self.request)

    def run(self, x: np.ndarray, flip: bool) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """As :meth:`ArrayBackend.run`; with flip test and two or more threads, the image and its
        mirror run as two requests at once on a second compiled model of two streams (each half
        the threads). On this 2-core VM, XS with flip test: the network stage 5% faster in the
        Predictor (50.4 against 52.9 ms fp32, 39.1 against 41.8 bf16, medians of 36 alternated
        runs), the requests alone 10-11%; the same outputs within float rounding."""
        if not flip or self._threads < 2 or self.batch not in (None, len(x)):
            return super().run(x, flip)
        if self._pair is None:
            config = {k: v for k, v in self._config.items() if k != "PERFORMANCE_HINT"}  # streams set by hand
            paired = self._core.compile_model(self._model, "CPU", {**config, "NUM_STREAMS": 2})
            self._pair = (paired.create_infer_request(), paired.create_infer_request())
        a, b = self._pair
        a.start_async({0: np.ascontiguousarray(x)})
        b.start_async({0: np.ascontiguousarray(x[..., ::-1])})
        a.wait()
        b.wait()
        return self._outputs(a), self._outputs(b)

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        b = self.batch
        if b is None or len(x) == b:
            return self._infer(x)
        parts = []  # a network of a fixed batch: run the samples b at a time, the last part padded
        for i in range(0, len(x), b):
            part = x[i : i + b]
            n = len(part)
            if n < b:
                part = np.concatenate([part, np.zeros((b - n, *part.shape[1:]), part.dtype)])
            parts.append([o[:n] for o in self._infer(np.ascontiguousarray(part))])
        return [np.concatenate(maps) for maps in zip(*parts)]

    def describe(self) -> str:
        return super().describe() + (" (raw BGR input, no litepose metadata)" if self.raw_bgr else "")
