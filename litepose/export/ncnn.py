"""NCNN export: the folded network traced to TorchScript, converted by pnnx (the ``ncnn`` extra).

Writes ``<name>.ncnn.param`` (NCNN's text graph), ``<name>.ncnn.bin`` (fp32 weights) and the
metadata sidecar ``<name>.ncnn.param.json`` (:func:`litepose.runtime.ncnn_backend.sidecar_path`):
NCNN's graph has no place for it. pnnx is told two input shapes (square and wider) so that it keeps
height and width dynamic; ``static`` records the one size in the graph's Input layer instead, which
the backend reads back (the predictor then letterboxes to it).

int8 (:func:`quantize_ncnn`, what NCNN's own ncnn2table + ncnn2int8 tools do, in Python, as pip's
packages ship neither): every Convolution and ConvolutionDepthWise layer, except the stem and the
output heads (:data:`litepose.export.int8.KEEP_FP32`, found by their place in the graph: pnnx keeps
no module names), gets ``int8_scale_term`` and its scales: per output channel (per group for a
depthwise layer) ``127 / max |w|`` for the weights, and ``127 / max |x|`` over the calibration
inputs for the layer's input. The weights stay fp32 in the file; NCNN quantises them when it loads
the graph and then runs those layers with its int8 kernels (Deconvolution has none: fp32).
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import one_line
from ..files import atomic_write
from ..runtime.base import missing
from ..runtime.metadata import ModelInfo, to_strings
from ..runtime.ncnn_backend import sidecar_path, weights_path

__all__ = ["export_ncnn", "write_ncnn", "quantize_ncnn"]


class _TwoMaps(nn.Module):
    """The network with a tuple of its two maps as output (pnnx turns a returned list into an
    expression layer that NCNN lacks)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        quarter, half = self.net(x)
        return quarter, half


def _pnnx() -> str:
    try:
        import pnnx
    except ImportError:
        raise missing("pnnx", "ncnn", "NCNN export") from None
    return str(pnnx.EXEC_PATH)


def write_ncnn(
    net: nn.Module, path: str | Path, size: int, static: bool, info: ModelInfo,
    calibration: Sequence[np.ndarray] | None = None,
) -> Path:  # fmt: skip
    """Convert the folded, eval-mode ``net`` with pnnx and write the NCNN pair and its sidecar (int8
    when ``calibration`` inputs are given, :func:`quantize_ncnn`); returns the ``.param`` path (the
    ``.bin`` and the sidecar are written first)."""
    path = Path(path)
    if path.suffix.lower() != ".param":
        raise ValueError(f"{path}: an NCNN graph file name ends in .param (e.g. model.ncnn.param)")
    exe = _pnnx()
    with tempfile.TemporaryDirectory(prefix="litepose-") as tmp:
        t = Path(tmp)
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about the input checks
            traced = torch.jit.trace(_TwoMaps(net).eval(), torch.zeros(1, 3, size, size), check_trace=False)
        traced.save(str(t / "m.pt"))
        shapes = [f"inputshape=[1,3,{size},{size}]f32"]
        if not static:  # a second shape: pnnx keeps the sizes that differ dynamic
            shapes.append(f"inputshape2=[1,3,{size},{size + 64}]f32")
        outs = {k: str(t / f"m.{k}") for k in ("pnnxparam", "pnnxbin", "pnnxpy", "pnnxonnx", "ncnnpy")}
        cmd = [exe, str(t / "m.pt"), *shapes, "fp16=0", f"ncnnparam={t / 'm.param'}", f"ncnnbin={t / 'm.bin'}"]
        cmd += [f"{k}={v}" for k, v in outs.items()]
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        if r.returncode != 0 or not (t / "m.param").is_file():
            raise ValueError(f"{path}: pnnx could not convert the network ({one_line(r.stderr or r.stdout, 300)})")
        param = (t / "m.param").read_text()
        if "pnnx." in param:  # an operator NCNN lacks: the file would not load
            bad = sorted(set(re.findall(r"^(pnnx\.\S+)", param, re.M)))
            raise ValueError(f"{path}: pnnx left layers NCNN cannot run: {', '.join(bad)}")
        if static:  # the Input layer's w, h, c: a graph of one size (read back by the backend)
            fixed = rf"\1 0={size} 1={size} 2=3"
            param = re.sub(r"^(Input\s+\S+\s+0\s+1\s+\S+)\s*$", fixed, param, count=1, flags=re.M)
        weights = (t / "m.bin").read_bytes()
    if calibration is not None:
        param, weights = quantize_ncnn(param, weights, calibration)
        info = replace(info, precision="int8")
    atomic_write(weights_path(path), lambda tmp: Path(tmp).write_bytes(weights))
    meta = json.dumps(to_strings(info), indent=1)
    atomic_write(sidecar_path(path), lambda tmp: Path(tmp).write_text(meta))
    return atomic_write(path, lambda tmp: Path(tmp).write_text(param))


def export_ncnn(
    model: nn.Module, path: str | Path, *, input_size: int | None = None, static: bool = False,
    calibration: Sequence[np.ndarray] | None = None,
) -> Path:  # fmt: skip
    """Write ``model`` as an NCNN graph (``path``, ending in ``.param``) + weights + metadata sidecar:
    fp32, or int8 when ``calibration`` (network inputs, :func:`litepose.export.int8.calibration_inputs`)
    is given."""
    from . import _info, _size, inference_copy

    size = _size(model, input_size)
    return write_ncnn(inference_copy(model), path, size, static, _info(model, size), calibration)


# -- int8 ------------------------------------------------------------------------------------------

_WEIGHTED = ("Convolution", "ConvolutionDepthWise", "Deconvolution")
_QUANTISED = ("Convolution", "ConvolutionDepthWise")
_RAW_FLOAT_TAG = 0  # a weight blob of pnnx's fp16=0 output: the tag 0, then float32 values


@dataclass
class _Layer:
    """One line of an NCNN ``.param`` graph."""

    kind: str
    name: str
    bottoms: list[str]
    tops: list[str]
    params: dict[str, str]
    line: int

    def get(self, key: str, default: int = 0) -> int:
        return int(self.params.get(key, default))


def _layers(param: str) -> list[_Layer]:
    lines = param.splitlines()
    if not lines or lines[0].strip() != "7767517":
        raise ValueError("not an NCNN param file (its first line is not the magic 7767517)")
    out = []
    for i, line in enumerate(lines[2:], start=2):
        parts = line.split()
        if not parts:
            continue
        nb, nt = int(parts[2]), int(parts[3])
        bottoms, tops = parts[4 : 4 + nb], parts[4 + nb : 4 + nb + nt]
        params = dict(p.split("=", 1) for p in parts[4 + nb + nt :])
        out.append(_Layer(parts[0], parts[1], bottoms, tops, params, i))
    return out


def _kept_layers(layers: list[_Layer]) -> set[str]:
    """The layers :data:`~litepose.export.int8.KEEP_FP32` means, by their place: the stem (the first
    three weighted layers, which everything else follows) and the output heads (each output's
    separable convolutions: its 1x1 convolutions and the depthwise ones that feed them, reached back
    from the output through additions and activations)."""
    weighted = [la for la in layers if la.kind in _WEIGHTED]
    kept = {la.name for la in weighted[:3]}
    producer = {top: la for la in layers for top in la.tops}
    consumed = {b for la in layers for b in la.bottoms}
    outputs = [top for la in layers for top in la.tops if top not in consumed]
    todo = [producer[o] for o in outputs if o in producer]
    while todo:
        la = todo.pop()
        if la.kind in _WEIGHTED:
            kept.add(la.name)
            if not (la.kind == "Convolution" and la.get("1") == 1):  # past a 1x1: its depthwise
                continue
        elif la.kind not in ("BinaryOp", "ReLU", "Clip", "Split"):
            continue
        todo += [producer[b] for b in la.bottoms if b in producer]
    return kept


def _blobs(layers: list[_Layer], weights: bytes) -> dict[str, tuple[np.ndarray, np.ndarray | None, int]]:
    """Each weighted layer's weights, bias and the offset where its blobs end, read from the ``.bin``
    in the order NCNN loads them (a layer of another kind with weights would be an error)."""
    out, pos = {}, 0
    for la in layers:
        if la.kind not in _WEIGHTED:
            continue
        (tag,) = struct.unpack_from("<I", weights, pos)
        if tag != _RAW_FLOAT_TAG:
            raise ValueError(f"NCNN layer {la.name}: weights stored with tag {tag:#x}, not raw fp32")
        n = la.get("6")
        w = np.frombuffer(weights, np.float32, n, pos + 4)
        pos += 4 + 4 * n
        bias = None
        if la.get("5"):
            bias = np.frombuffer(weights, np.float32, la.get("0"), pos)
            pos += 4 * la.get("0")
        out[la.name] = (w, bias, pos)
    if pos != len(weights):
        raise ValueError(f"NCNN weights: read {pos} of {len(weights)} bytes (a layer kind litepose does not parse)")
    return out


def quantize_ncnn(param: str, weights: bytes, inputs: Sequence[np.ndarray]) -> tuple[str, bytes]:
    """An NCNN graph and weights made int8 (see the module doc) on the calibration ``inputs``
    ((1, 3, H, W) float32 arrays); returns the new ``(param, weights)``."""
    import ncnn

    layers = _layers(param)
    blobs = _blobs(layers, weights)
    kept = _kept_layers(layers)
    chosen = [la for la in layers if la.kind in _QUANTISED and la.name not in kept]
    if not chosen:
        raise ValueError("NCNN int8 quantisation quantised no layer: refusing to label an fp32 network int8")
    peaks = _input_peaks(param, weights, [la.bottoms[0] for la in chosen], inputs, ncnn)
    lines = param.splitlines()
    extra: dict[str, bytes] = {}
    for la in chosen:
        w, _bias, _end = blobs[la.name]
        groups = la.get("7", 1) if la.kind == "ConvolutionDepthWise" else la.get("0")
        peak_w = np.abs(w.reshape(groups, -1)).max(axis=1)
        w_scales = np.where(peak_w > 0, 127.0 / np.maximum(peak_w, 1e-30), 1.0).astype(np.float32)
        peak_x = peaks[la.bottoms[0]]
        x_scale = np.float32(127.0 / peak_x if peak_x > 0 else 1.0)
        extra[la.name] = w_scales.tobytes() + x_scale.tobytes()
        lines[la.line] += " 8=1"
    out, pos = bytearray(), 0
    for la in layers:
        if la.name in blobs:
            end = blobs[la.name][2]
            out += weights[pos:end] + extra.get(la.name, b"")
            pos = end
    return "\n".join(lines) + "\n", bytes(out)


def _input_peaks(param: str, weights: bytes, names: list[str], inputs: Sequence[np.ndarray], ncnn: Any) -> dict:
    """max |x| of each blob of ``names`` over the calibration ``inputs``, from the fp32 graph."""
    with tempfile.TemporaryDirectory(prefix="litepose-") as tmp:
        t = Path(tmp) / "m.param"
        t.write_text(param)
        t.with_suffix(".bin").write_bytes(weights)
        net = ncnn.Net()
        for flag in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_storage"):
            setattr(net.opt, flag, False)
        net.opt.use_vulkan_compute = False
        if net.load_param(str(t)) != 0 or net.load_model(str(t.with_suffix(".bin"))) != 0:
            raise ValueError("NCNN cannot load the fp32 graph pnnx wrote")
        input_name = list(net.input_names())[0]
        peaks = dict.fromkeys(names, 0.0)
        for x in inputs:
            for sample in x:
                sample = np.ascontiguousarray(sample, dtype=np.float32)
                ex = net.create_extractor()
                ex.input(input_name, ncnn.Mat(sample))
                for name in peaks:
                    rc, mat = ex.extract(name)
                    if rc != 0:
                        raise ValueError(f"NCNN could not compute blob {name} for calibration")
                    peaks[name] = max(peaks[name], float(np.abs(np.array(mat)).max()))
    return peaks
