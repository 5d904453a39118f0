"""Exporting a LitePose for the CPU runtimes: ONNX, OpenVINO IR, TorchScript, and int8 versions.

Every export starts from the BatchNorm-folded network (:func:`litepose.fold_batchnorm`), takes
the normalised float input (N, 3, H, W) and returns the network's two raw maps, as
``LitePose.forward`` does (1/4 resolution: K heatmaps + K tags; 1/2 resolution: K heatmaps).
Batch, height and width are dynamic (the aspect-keeping resize feeds e.g. 256x384) unless
``static``, which fixes H = W = the input size. The file carries the metadata a runtime needs
(:mod:`litepose.runtime.metadata`: joints, keypoint set, input size, normalisation).

- :func:`export_onnx`: one self-contained ``.onnx`` file (weights inside, no side ``.data``);
- :func:`export_openvino`: OpenVINO IR ``.xml`` + ``.bin`` (fp32 weights, not fp16-compressed);
- :func:`export_torchscript`: a traced ``.torchscript`` file;
- :func:`export_ncnn` (:mod:`litepose.export.ncnn`): NCNN ``.ncnn.param`` + ``.ncnn.bin`` by pnnx,
  metadata in a sidecar JSON;
- :func:`export_executorch` (:mod:`litepose.export.executorch`): an ExecuTorch ``.pte`` lowered to
  XNNPACK (batch 1);
- int8 (:mod:`litepose.export.int8`): static quantisation on calibration images, ONNX Runtime
  QDQ, OpenVINO NNCF, ExecuTorch PT2E or litepose's own NCNN scales.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..files import atomic_write
from ..formats import FORMATS, format_for_backend
from ..models.fold import fold_batchnorm
from ..models.litepose import LitePose
from ..models.spec import check_input_size
from ..runtime import Backend, check_threads, open_backend, torch_model
from ..runtime.base import missing
from ..runtime.metadata import TS_EXTRA, ModelInfo, model_info, to_strings
from .executorch import export_executorch
from .ncnn import export_ncnn

__all__ = [
    "FORMATS", "export_model", "export_onnx", "export_openvino", "export_torchscript", "inference_copy",
    "default_output", "open_exported", "openvino_model", "save_openvino", "export_ncnn", "export_executorch",
]  # fmt: skip

INPUT_NAME = "input"
OUTPUT_NAMES = ("quarter", "half")
OPSET = 17


def inference_copy(model: nn.Module) -> nn.Module:
    """A CPU, eval-mode copy of ``model`` with BatchNorm folded (a LitePose; others as they are)."""
    if isinstance(model, LitePose):
        return fold_batchnorm(model).cpu().eval()
    raise ValueError(f"export takes a LitePose (a supernet: extract a subnet first), got {type(model).__name__}")


def _size(model: nn.Module, input_size: int | None) -> int:
    return check_input_size(input_size or getattr(model, "input_size", None) or 256, "input size")


def _info(model: nn.Module, size: int, precision: str = "fp32") -> ModelInfo:
    from dataclasses import replace

    return replace(model_info(model, precision), input_size=size)


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    input_size: int | None = None,
    static: bool = False,
    info: ModelInfo | None = None,
) -> Path:
    """Write ``model`` as one self-contained ONNX file (opset 17) with litepose metadata; returns the path.

    Uses torch's TorchScript-based exporter (``dynamo=False``): seconds instead of a minute for
    the dynamo exporter, and the weights stay inside the file."""
    try:
        import onnx
    except ImportError:
        raise missing("onnx", "export", "ONNX export") from None
    size = _size(model, input_size)
    net = inference_copy(model)
    # a non-square example input, so that no size gets fixed to square by the tracer
    x = torch.zeros(1, 3, size, size if static else size + 64)
    axes: dict[str, dict[int, str]] = {name: {0: "batch"} for name in (INPUT_NAME, *OUTPUT_NAMES)}
    if not static:
        axes[INPUT_NAME].update({2: "height", 3: "width"})
        axes[OUTPUT_NAMES[0]].update({2: "height_4", 3: "width_4"})
        axes[OUTPUT_NAMES[1]].update({2: "height_2", 3: "width_2"})
    import io

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer warnings (the input checks)
        try:
            torch.onnx.export(
                net, (x,), buf, dynamo=False, opset_version=OPSET, input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES), dynamic_axes=axes, do_constant_folding=True,
            )  # fmt: skip
        except (TypeError, RuntimeError):  # a torch without the TorchScript-based exporter: dynamo
            buf = io.BytesIO(_dynamo_export(net, x, static))
    proto = onnx.load_from_string(buf.getvalue())
    set_onnx_metadata(proto, info or _info(model, size))
    return atomic_write(path, lambda tmp: onnx.save(proto, str(tmp)))


def _dynamo_export(net: nn.Module, x: torch.Tensor, static: bool) -> bytes:
    """ONNX bytes from torch's dynamo exporter (needs onnxscript), weights inside the model."""
    import tempfile

    dims = {} if static else {2: torch.export.Dim.AUTO, 3: torch.export.Dim.AUTO}
    with tempfile.TemporaryDirectory(prefix="litepose-") as tmp:
        f = Path(tmp) / "m.onnx"
        torch.onnx.export(
            net, (x,), str(f), dynamo=True, external_data=False, opset_version=18, input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES), dynamic_shapes={"x": {0: torch.export.Dim("batch"), **dims}},
        )  # fmt: skip
        return f.read_bytes()


def set_onnx_metadata(proto: Any, info: ModelInfo) -> None:
    """Replace the litepose entries of an ONNX model's ``metadata_props`` by ``info``'s."""
    strings = to_strings(info)
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key not in strings]
    del proto.metadata_props[:]
    for k, v in [*keep, *strings.items()]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v


def set_rt_info(ov_model: Any, info: ModelInfo) -> None:
    """Record ``info`` in an OpenVINO model's ``rt_info["litepose"]``."""
    from ..runtime.ov_backend import RT_SECTION

    for k, v in to_strings(info).items():
        ov_model.set_rt_info(v, [RT_SECTION, k])


def save_openvino(ov_model: Any, path: str | Path) -> Path:
    """Write an OpenVINO model as IR (``.xml`` + ``.bin`` beside it), weights uncompressed; the
    ``.bin`` is written first, each file atomically."""
    import openvino as ov

    path = Path(path)
    if path.suffix.lower() != ".xml":
        raise ValueError(f"{path}: an OpenVINO IR file name ends in .xml")
    import tempfile

    with tempfile.TemporaryDirectory(dir=path.parent if path.parent.exists() else None) as tmp:
        ov.save_model(ov_model, str(Path(tmp) / "m.xml"), compress_to_fp16=False)
        atomic_write(path.with_suffix(".bin"), lambda t: Path(t).write_bytes((Path(tmp) / "m.bin").read_bytes()))
        xml = (Path(tmp) / "m.xml").read_text()
    return atomic_write(path, lambda t: Path(t).write_text(xml))


def openvino_model(model: nn.Module, *, input_size: int | None = None, static: bool = False) -> Any:
    """An OpenVINO model of ``model`` (through a temporary ONNX file), with litepose rt_info."""
    try:
        import openvino as ov
    except ImportError:
        raise missing("openvino", "openvino", "OpenVINO export") from None
    import tempfile

    size = _size(model, input_size)
    with tempfile.TemporaryDirectory(prefix="litepose-") as tmp:
        onnx_path = export_onnx(model, Path(tmp) / "m.onnx", input_size=size, static=static)
        ov_model = ov.convert_model(str(onnx_path))
    set_rt_info(ov_model, _info(model, size))
    return ov_model


def export_openvino(model: nn.Module, path: str | Path, *, input_size: int | None = None, static: bool = False) -> Path:
    """Write ``model`` as OpenVINO IR (``path`` ``.xml`` and its ``.bin``); returns the ``.xml`` path."""
    return save_openvino(openvino_model(model, input_size=input_size, static=static), path)


def export_torchscript(
    model: nn.Module, path: str | Path, *, input_size: int | None = None, static: bool = False
) -> Path:
    """Write ``model`` traced to TorchScript (folded; any input size works unless ``static`` is
    recorded), metadata in the extra file ``litepose.json``; returns the path."""
    size = _size(model, input_size)
    net = inference_copy(model)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about the input checks
        traced = torch.jit.trace(net, torch.zeros(1, 3, size, size), check_trace=False)
    extra = {TS_EXTRA: json.dumps(to_strings(_info(model, size)))}
    buffer = io.BytesIO()  # in memory first: torch aborts the process when a file write fails mid-archive
    torch.jit.save(traced, buffer, _extra_files=extra)
    return atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getbuffer()))


def export_model(
    model: nn.Module,
    fmt: str,
    path: str | Path,
    *,
    input_size: int | None = None,
    static: bool = False,
    int8: bool = False,
    calib: str | Path | None = None,
    int8_images: int | None = None,
) -> Path:
    """Write ``model`` in ``fmt`` (one of :data:`FORMATS`) to ``path``; ``int8``: statically quantised
    on the calibration images of ``calib`` (default: generated SynthPose images). Returns the path."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    size = _size(model, input_size)
    static = static or fmt == "executorch"  # ExecuTorch programs have one input size (export/executorch.py)
    if not int8:
        write = globals()[FORMATS[fmt].exporter]  # the registry names this module's writer
        return write(model, path, input_size=size, static=static)
    if not FORMATS[fmt].int8:
        *most, last = [f.name for f in FORMATS.values() if f.int8]
        quantised = f"{', '.join(most)} or {last}"
        raise ValueError(f"--int8: quantised export is for --format {quantised}, not {fmt}")
    from . import int8 as q

    images = q.calibration_images(calib, int8_images or q.DEFAULT_IMAGES)
    inputs = q.calibration_inputs(images, size, model_info(model).normalization, static=static)
    if fmt == "onnx":
        import tempfile

        with tempfile.TemporaryDirectory(prefix="litepose-") as tmp:
            fp32 = export_onnx(model, Path(tmp) / "fp32.onnx", input_size=size, static=static)
            return q.quantize_onnx(fp32, path, inputs)
    if fmt == "executorch":
        return export_executorch(model, path, input_size=size, static=static, calibration=inputs)
    if fmt == "ncnn":
        return export_ncnn(model, path, input_size=size, static=static, calibration=inputs)
    return save_openvino(q.quantize_openvino(openvino_model(model, input_size=size, static=static), inputs), path)


def default_output(weights: str | Path, fmt: str, int8: bool = False) -> Path:
    """``<weights stem>[-int8].<format ext>`` in the current folder."""
    stem = Path(str(weights)).name
    for suffix in (".tar", ".pth", ".pt", ".ckpt"):
        stem = stem.removesuffix(suffix)
    return Path(f"{stem}{'-int8' if int8 else ''}{FORMATS[fmt].suffix}")


def open_exported(source: Any, backend: str, *, threads: int | None = None, arch: str | None = None) -> Backend:
    """``source`` (a torch module, or a checkpoint path or weights name) run by ``backend``
    (``onnxruntime`` / ``openvino`` / ``ncnn`` / ``executorch``, :func:`litepose.runtime.needs_export`):
    exported to a temporary file (ONNX; NCNN and ExecuTorch their own), then opened by
    :func:`litepose.runtime.open_backend` (the file is read into the runtime, so it can go).
    ``arch`` overrides a checkpoint's architecture."""
    check_threads(threads)  # before the export: a bad count fails at once
    model = torch_model(source, arch)
    import tempfile

    fmt = FORMATS["onnx"] if backend in ("onnxruntime", "openvino") else format_for_backend(backend)
    if fmt is None:
        raise ValueError(f"the {backend} backend runs no exported file")
    with tempfile.TemporaryDirectory(prefix="litepose-") as tmp:
        path = export_model(model, fmt.name, Path(tmp) / f"model{fmt.suffix}")
        return open_backend(path, backend, threads=threads)
