"""ExecuTorch export: the folded network through ``torch.export``, lowered to XNNPACK, as one ``.pte``
(the ``executorch`` extra); int8 by PT2E static quantisation with ExecuTorch's XNNPACK quantizer.

The program takes one sample (batch 1) of one size, input size x input size: it is always a static
export (as ``--static``), and the predictor letterboxes every image to that square. Lowering with
dynamic height and width worked (same outputs) but took minutes instead of tens of seconds
(measured here: 265 s against 38 s for XS on a busy 2-core machine). The metadata is inside the
program, as a constant method (:data:`~litepose.runtime.et_backend.METADATA_METHOD` returns the
``litepose.<key>`` strings as one JSON text).

int8: symmetric int8 activations (per tensor) and weights (per output channel) on the calibration
inputs of :mod:`litepose.export.int8`, except in the layers of :data:`litepose.export.int8.KEEP_FP32`
(the stem and the output heads stay fp32, as in the ONNX Runtime and OpenVINO int8 exports).
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..files import atomic_write
from ..runtime.base import missing
from ..runtime.et_backend import METADATA_METHOD, quiet_executorch
from ..runtime.metadata import ModelInfo, to_strings

__all__ = ["export_executorch", "write_executorch"]


def _exir() -> Any:
    try:
        with quiet_executorch():
            from executorch import exir
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    except ImportError:
        raise missing("executorch", "executorch", "ExecuTorch export") from None
    return exir, XnnpackPartitioner


def _kept_node(node: Any, keep_fp32: Sequence[str]) -> bool:
    """Whether an exported graph node belongs to a layer that stays fp32 (its module path has a
    component named like one of ``keep_fp32``'s entries: ``/first/`` -> ``first``, ``/final_`` ->
    ``final_*``)."""
    names = [k.strip("/") for k in keep_fp32]
    for path, _type in (node.meta.get("nn_module_stack") or {}).values():
        for part in re.split(r"[.\[\]'\"]+", str(path)):
            if any(part == n or (n.endswith("_") and part.startswith(n)) for n in names):
                return True
    return False


def _quantize(net: nn.Module, example: torch.Tensor, inputs: Sequence[np.ndarray]) -> nn.Module:
    """The PT2E int8 version of ``net`` calibrated on ``inputs`` (a module that ``torch.export`` takes)."""
    try:
        with quiet_executorch():
            from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
                XNNPACKQuantizer,
                get_symmetric_quantization_config,
            )
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    except ImportError:
        raise missing("torchao", "executorch", "ExecuTorch int8 quantisation") from None
    from .int8 import KEEP_FP32

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    # the graph's outputs stay fp32 too: the additions that end each head belong to no head module
    quantizer.set_filter_function(lambda n: not _kept_node(n, KEEP_FP32) and all(u.op != "output" for u in n.users))
    graph = torch.export.export(net, (example,)).module()
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for x in inputs:
            prepared(torch.from_numpy(np.ascontiguousarray(x)))
    converted = convert_pt2e(prepared)
    quantized = sum(1 for n in converted.graph.nodes if "quantize_per_tensor" in str(n.target))
    if not quantized:
        raise ValueError("ExecuTorch int8 quantisation quantised nothing: refusing to label an fp32 network int8")
    return converted


def write_executorch(
    net: nn.Module, path: str | Path, size: int, info: ModelInfo, calibration: Sequence[np.ndarray] | None = None
) -> Path:
    """Lower the folded, eval-mode ``net`` for (1, 3, size, size) inputs (int8 first when ``calibration``
    inputs are given) and write the ``.pte`` with its metadata method; returns the path."""
    exir, partitioner = _exir()
    path = Path(path)
    if path.suffix.lower() != ".pte":
        raise ValueError(f"{path}: an ExecuTorch program file name ends in .pte")
    example = torch.zeros(1, 3, size, size)
    if calibration is not None:
        info = replace(info, precision="int8")
    constants = {METADATA_METHOD: json.dumps(to_strings(info))}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's and quantizer's deprecation notes
        if calibration is not None:
            net = _quantize(net, example, calibration)
        program = torch.export.export(net, (example,))
        edge = exir.to_edge_transform_and_lower(program, partitioner=[partitioner()], constant_methods=constants)
        buffer = edge.to_executorch().buffer
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(buffer))


def export_executorch(
    model: nn.Module, path: str | Path, *, input_size: int | None = None, static: bool = False,
    calibration: Sequence[np.ndarray] | None = None,
) -> Path:  # fmt: skip
    """Write ``model`` as an ExecuTorch ``.pte`` program for XNNPACK, input size x input size (always
    static: ``static`` changes nothing): fp32, or int8 when ``calibration`` (network inputs,
    :func:`litepose.export.int8.calibration_inputs` with ``static=True``) is given."""
    from . import _info, _size, inference_copy

    size = _size(model, input_size)
    return write_executorch(inference_copy(model), path, size, _info(model, size), calibration)
