"""Inference backends: where :class:`~litepose.Predictor` runs the network.

=============== ============================================================ ================
backend         what runs                                                    needs
=============== ============================================================ ================
``torch``       a checkpoint's LitePose, BatchNorm folded, channels-last,    torch
                inference mode (the default for checkpoints and modules)
``torch-eager`` the module as it is, unfolded (what the original runs)        torch
``torchscript`` a ``.torchscript`` file of ``litepose export``                torch
``onnxruntime`` an ``.onnx`` file (fp32 or int8)                              onnxruntime
``openvino``    an OpenVINO IR ``.xml`` (or an ``.onnx`` file), fp32 or int8  openvino
=============== ============================================================ ================

:func:`default_backend` picks it from the file suffix; the ONNX Runtime and OpenVINO paths import
no torch (``pip install --no-deps litepose`` plus the ``runtime`` extra's packages is enough).
Asked for ``onnxruntime`` / ``openvino`` with a checkpoint, :func:`open_backend` exports it first
(to a temporary file: that needs torch and the ``export`` extra). A weights name of an exported
network (:func:`named_export`, e.g. ``litepose-auto-s-coco``, an OpenVINO IR) is downloaded and
verified (:mod:`litepose.models.weights`), then run by its entry's backend.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from .base import Backend
from .metadata import ModelInfo

__all__ = ["BACKENDS", "Backend", "ModelInfo", "default_backend", "named_export", "open_backend", "FILE_SUFFIXES"]

BACKENDS = ("torch", "torch-eager", "torchscript", "onnxruntime", "openvino")
#: Exported-file suffix -> the backend that runs it by default.
FILE_SUFFIXES = {".onnx": "onnxruntime", ".xml": "openvino", ".torchscript": "torchscript"}


def default_backend(source: Any) -> str:
    """The backend for a weights file by its suffix (``.onnx``, ``.xml``, ``.torchscript``), else ``torch``."""
    if isinstance(source, (str, Path)):
        return FILE_SUFFIXES.get(Path(source).suffix.lower(), "torch")
    return "torch"


def _is_exported(source: Any) -> bool:
    return isinstance(source, (str, Path)) and Path(source).suffix.lower() in FILE_SUFFIXES


def named_export(source: Any) -> Any:
    """The weights registry entry (:mod:`litepose.models.weights`) of ``source`` when it is a weights
    name, not an existing path, of an exported network (an entry with a ``backend``), else None."""
    if not isinstance(source, str) or _is_exported(source) or Path(source).exists():
        return None
    from ..models.weights import find_weights

    entry = find_weights(source)
    return entry if entry is not None and entry.backend else None


def open_backend(
    source: Any,
    backend: str | None = None,
    *,
    device: Any = "auto",
    threads: int | None = None,
    arch: str | None = None,
) -> Backend:
    """A :class:`Backend` for ``source``: a torch module, a checkpoint path or weights name, or an
    exported file (``.onnx``, ``.xml``, ``.torchscript``). ``backend``: one of :data:`BACKENDS`
    (default: :func:`default_backend`). ``threads``: the runtime's CPU threads (torch: the
    process's, ``torch.set_num_threads``). ``device``: torch backends only; ``arch`` overrides a
    checkpoint's architecture."""
    entry = named_export(source)
    if entry is not None:  # a weights name of an exported network: its verified file, by its backend
        from ..models.weights import download_weights

        source, backend = download_weights(entry), backend or entry.backend
    name = backend or default_backend(source)
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
    if threads is not None and (isinstance(threads, bool) or int(threads) < 1):
        raise ValueError(f"threads must be at least 1, got {threads}")
    exported = _is_exported(source)
    if exported and not Path(source).is_file():
        raise FileNotFoundError(f"{source}: no such file")
    if name in ("onnxruntime", "openvino"):
        suffix = Path(source).suffix.lower() if exported else None
        if suffix == ".torchscript" or (name == "onnxruntime" and suffix == ".xml"):
            raise ValueError(f"{source}: the {name} backend cannot run a {suffix} file")
        if not exported:
            return _exported_then_opened(source, name, threads, arch)
        if name == "onnxruntime":
            from .ort_backend import OnnxRuntimeBackend

            return OnnxRuntimeBackend(source, threads)
        from .ov_backend import OpenVinoBackend

        return OpenVinoBackend(source, threads)
    # torch backends
    from ..device import pick_device

    if threads is not None:
        import torch

        torch.set_num_threads(int(threads))
    dev = pick_device(device)
    if name == "torchscript":
        if not (exported and Path(source).suffix.lower() == ".torchscript"):
            raise ValueError(f"{source}: the torchscript backend runs a .torchscript file of 'litepose export'")
        from .torch_backend import TorchScriptBackend

        return TorchScriptBackend(source, dev)
    if exported:
        raise ValueError(
            f"{source}: an exported file runs with its own backend ({default_backend(source)}), not {name}"
        )
    from .torch_backend import TorchBackend

    return TorchBackend(_torch_model(source, arch), dev, eager=name == "torch-eager")


def _torch_model(source: Any, arch: str | None) -> Any:
    if isinstance(source, (str, Path)):
        from ..models import load_checkpoint

        model, _info = load_checkpoint(source, arch=arch)
        return model
    from torch import nn

    if not isinstance(source, nn.Module):
        raise TypeError(f"expected a model or a checkpoint path, got {type(source).__name__}")
    return source


def _exported_then_opened(source: Any, name: str, threads: int | None, arch: str | None) -> Backend:
    """A checkpoint or module run by ONNX Runtime / OpenVINO: exported to a temporary ONNX file first."""
    from ..export import export_onnx

    model = _torch_model(source, arch)
    with tempfile.TemporaryDirectory(prefix="litepose-") as tmp:
        path = export_onnx(model, Path(tmp) / "model.onnx")
        return open_backend(path, name, threads=threads)
