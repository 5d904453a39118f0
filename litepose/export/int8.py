"""int8 by static quantisation on calibration images.

Calibration inputs are made exactly as :class:`~litepose.Predictor` makes network inputs (the
aspect-keeping resize at the export's input size, then the model's normalisation), with their
mirrored copies (the flip test runs them too), from the images of ``calib`` (a folder) or, by
default, generated SynthPose images.

- :func:`quantize_onnx`: ONNX Runtime QDQ: uint8 activations, int8 per-channel weights, the
  quantised op types of :data:`ORT_OPS` (ConvTranspose left in fp32 by default: see docs/deploy.md
  for the per-op measurements);
- :func:`quantize_openvino`: NNCF's post-training quantisation of an OpenVINO model (the
  ``openvino`` extra's ``nncf``).

Both leave the layers of :data:`KEEP_FP32` in fp32: the stem, which sees the raw normalised
image, and the output heads, whose maps the decoder reads directly (first and last layers in
float, as is usual for int8 networks; docs/deploy.md has the measurements).

Both check the graph they made before labelling it int8 (:func:`quantized_onnx_nodes`,
:func:`quantized_openvino_ops`): a quantiser that quantised nothing (every layer excluded, an op
type the graph lacks, a tool that silently returned its input) is an error, never an fp32
network labelled int8.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import preprocess as pre
from ..normalization import Normalization
from ..runtime.base import missing

__all__ = [
    "calibration_inputs", "calibration_images", "quantize_onnx", "quantize_openvino", "quantized_onnx_nodes",
    "quantized_openvino_ops", "ORT_OPS",
]  # fmt: skip

#: Op types ONNX Runtime quantises (its int8 kernels on this CPU beat fp32 for these).
ORT_OPS = ("Conv",)
#: Layers left in fp32 (node names containing these; the OpenVINO model keeps the ONNX names):
#: the stem (``first``) and the output heads (``final_*``). Quantising the stem was the largest
#: single loss of heatmap agreement measured (docs/deploy.md).
KEEP_FP32 = ("/first/", "/final_")
_METHODS = {
    "minmax": lambda m: m.MinMax,
    "percentile": lambda m: m.Percentile,
    "entropy": lambda m: m.Entropy,
}
DEFAULT_IMAGES = 32


def _kept(name: str, keep_fp32: Sequence[str]) -> bool:
    """Whether the layer ``name`` (an ONNX node / OpenVINO op; the IR keeps the ONNX names) stays fp32."""
    return any(part in name for part in keep_fp32)


def calibration_images(calib: str | Path | None = None, count: int = DEFAULT_IMAGES) -> list[np.ndarray]:
    """RGB uint8 images: up to ``count`` from the folder ``calib`` (sorted by name), else ``count``
    generated SynthPose images (640x480)."""
    if calib is None:
        from ..data.synth import render_image

        return [render_image(1234, i, (640, 480)).image for i in range(count)]
    from ..media import IMAGE_SUFFIXES, read_image

    folder = Path(calib)
    if not folder.is_dir():
        raise ValueError(f"calibration images {folder}: not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:count]
    if not files:
        raise ValueError(f"calibration images {folder}: holds no image files")
    return [read_image(p, frame="upright") for p in files]


def calibration_inputs(
    images: Sequence[np.ndarray], input_size: int, normalization: Normalization, *, static: bool = False
) -> list[np.ndarray]:
    """Network inputs (1, 3, H, W) float32 for the calibration images, each followed by its mirror."""
    out = []
    for im in images:
        h, w = im.shape[:2]
        g = pre.square_geometry(h, w, input_size) if static else pre.resize_geometry(h, w, input_size)
        x = pre.input_array(pre.resize_image(im, g)[None], normalization)
        out += [x, np.ascontiguousarray(x[..., ::-1])]
    return out


#: ONNX ops that compute in integers themselves (the QOperator format and integer kernels).
_ONNX_INTEGER_OPS = {"QLinearConv", "ConvInteger", "QLinearMatMul", "MatMulInteger", "QLinearAdd"}


def quantized_onnx_nodes(proto: Any, op_types: Sequence[str] = ORT_OPS) -> tuple[list[str], list[str]]:
    """Names of the nodes of ``op_types`` that run quantised in the ONNX model ``proto``, and of those
    that stay float. Quantised: an integer op (``QLinearConv``, ``ConvInteger``, ...), or (QDQ format)
    a node whose input and weight both come out of ``DequantizeLinear``, i.e. int8 tensors that
    ONNX Runtime fuses into an integer kernel."""
    producer = {out: n for n in proto.graph.node for out in n.output}

    def dequantized(name: str) -> bool:
        n = producer.get(name)
        return n is not None and n.op_type == "DequantizeLinear"

    quantized, float_ = [], []
    for n in proto.graph.node:
        if n.op_type in _ONNX_INTEGER_OPS:
            quantized.append(n.name)
        elif n.op_type in op_types:
            qdq = len(n.input) >= 2 and dequantized(n.input[0]) and dequantized(n.input[1])
            (quantized if qdq else float_).append(n.name)
    return quantized, float_


def quantized_openvino_ops(ov_model: Any) -> list[str]:
    """Names of the quantising operations of an OpenVINO model: ``FakeQuantize`` (what NNCF's
    post-training quantisation inserts; the CPU plugin runs the layers after it in int8) and
    conversions from 8-bit integer constants (compressed weights)."""
    out = []
    for op in ov_model.get_ops():
        kind = op.get_type_name()
        if kind == "FakeQuantize":
            out.append(op.get_friendly_name())
        elif kind == "Convert" and op.input_value(0).get_element_type().get_type_name() in ("i8", "u8"):
            out.append(op.get_friendly_name())
    return out


def quantize_onnx(
    fp32_path: str | Path,
    out_path: str | Path,
    inputs: Sequence[np.ndarray],
    *,
    op_types: Sequence[str] = ORT_OPS,
    keep_fp32: Sequence[str] = KEEP_FP32,
    method: str = "minmax",
) -> Path:
    """Static QDQ quantisation of an fp32 ONNX file on ``inputs`` (min-max calibration), metadata
    copied with ``precision`` int8; returns ``out_path``."""
    try:
        import onnx
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
    except ImportError:
        raise missing("onnxruntime", "export", "int8 quantisation") from None
    import tempfile

    from ..files import atomic_write
    from ..runtime.metadata import from_strings

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it: Iterator[np.ndarray] = iter(inputs)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.it, None)
            return None if x is None else {"input": x}

    src = onnx.load(str(fp32_path))
    exclude = [n.name for n in src.graph.node if _kept(n.name, keep_fp32)]
    meta = {p.key: p.value for p in src.metadata_props}
    with tempfile.TemporaryDirectory(prefix="litepose-") as tmp, _without_preprocessing_advice():
        q = Path(tmp) / "q.onnx"
        quantize_static(
            str(fp32_path), str(q), _Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=list(op_types),
            nodes_to_exclude=exclude, calibrate_method=_METHODS[method](CalibrationMethod),
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )  # fmt: skip
        proto = onnx.load(str(q))
    quantized, _float = quantized_onnx_nodes(proto, op_types)
    if not quantized:
        raise ValueError(
            f"{fp32_path}: int8 quantisation quantised no {'/'.join(op_types)} node (all excluded by "
            f"{list(keep_fp32)}, or none in the graph): refusing to label an fp32 network int8"
        )
    from dataclasses import replace

    from . import set_onnx_metadata

    set_onnx_metadata(proto, replace(from_strings(meta, str(fp32_path)), precision="int8"))
    return atomic_write(out_path, lambda tmp: onnx.save(proto, str(tmp)))


def quantize_openvino(ov_model: Any, inputs: Sequence[np.ndarray], *, keep_fp32: Sequence[str] = KEEP_FP32) -> Any:
    """NNCF post-training int8 quantisation of an OpenVINO model on ``inputs`` (rt_info kept, with
    ``precision`` int8); operations whose names contain one of ``keep_fp32`` stay fp32."""
    try:
        import nncf
    except ImportError:
        raise missing("nncf", "openvino", "OpenVINO int8 quantisation") from None
    from dataclasses import replace

    from ..runtime.metadata import from_strings
    from ..runtime.ov_backend import read_rt_info
    from . import set_rt_info

    info = from_strings(read_rt_info(ov_model), "the OpenVINO model")
    keep = [op.get_friendly_name() for op in ov_model.get_ops() if _kept(op.get_friendly_name(), keep_fp32)]
    q = nncf.quantize(
        ov_model, nncf.Dataset(list(inputs)), preset=nncf.QuantizationPreset.PERFORMANCE,
        subset_size=len(inputs), fast_bias_correction=True,
        ignored_scope=nncf.IgnoredScope(names=keep, validate=False) if keep else None,
    )  # fmt: skip
    if not quantized_openvino_ops(q):
        raise ValueError(
            "OpenVINO int8 quantisation (NNCF) inserted no FakeQuantize: refusing to label an fp32 network int8"
        )
    set_rt_info(q, replace(info, precision="int8"))
    return q


class _PreprocessingAdvice(logging.Filter):
    """Drops ONNX Runtime's advice to run its optional pre-processing script first, logged on the root
    logger at every quantisation: litepose quantises its exported graph as it is (its AP cost is
    measured in docs/deploy.md), so the two lines are noise in every ``--precision int8`` run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "before quantization" not in record.getMessage()


@contextlib.contextmanager
def _without_preprocessing_advice() -> Iterator[None]:
    root, quiet = logging.getLogger(), _PreprocessingAdvice()
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)
