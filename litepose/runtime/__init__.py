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
``ncnn``        an NCNN ``.ncnn.param`` graph (+ ``.bin``, metadata sidecar)   ncnn
``executorch``  an ExecuTorch ``.pte`` program (XNNPACK), fp32 or int8        executorch, torch
=============== ============================================================ ================

:func:`default_backend` picks it from the file suffix (the table: :mod:`litepose.formats`); the
ONNX Runtime and OpenVINO paths import no torch (``pip install --no-deps litepose`` plus the
``runtime`` extra's packages is enough). A weights name of an exported network
(:func:`named_export`, e.g. ``litepose-auto-s-coco``, an OpenVINO IR) is downloaded and verified
(:mod:`litepose.models.weights`), then run by its entry's backend.

The runtime runs networks, it does not export them (it sits below :mod:`litepose.export`): a
checkpoint asked for on ``onnxruntime`` / ``openvino`` (:func:`needs_export`) is exported first by
:func:`litepose.export.open_exported`, which :class:`~litepose.Predictor` calls for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..formats import BACKENDS, FILE_SUFFIXES, RUNS, default_backend, is_exported, runs_suffix
from .base import Backend
from .metadata import ModelInfo

__all__ = [
    "BACKENDS", "Backend", "ModelInfo", "check_threads", "default_backend", "named_export", "needs_export",
    "open_backend", "torch_model", "FILE_SUFFIXES",
]  # fmt: skip


def check_threads(threads: int | None) -> None:
    """A runtime's CPU thread count: None (the runtime's own) or at least 1."""
    if threads is not None and (isinstance(threads, bool) or int(threads) < 1):
        raise ValueError(f"threads must be at least 1, got {threads}")


def needs_export(source: Any, backend: str | None) -> bool:
    """Whether ``source`` must be exported before ``backend`` can run it: a checkpoint (path or
    weights name of a torch network) or a torch module, asked for on a backend of exported files
    (all but ``torchscript``, which takes only its own files)."""
    runs_files = backend in RUNS and backend != "torchscript"
    return runs_files and not is_exported(source) and named_export(source) is None


def named_export(source: Any) -> Any:
    """The weights registry entry (:mod:`litepose.models.weights`) of ``source`` when it is a weights
    name, not an existing path, of an exported network (an entry with a ``backend``), else None."""
    if not isinstance(source, str) or is_exported(source) or Path(source).exists():
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
    precision: str | None = None,
) -> Backend:
    """A :class:`Backend` for ``source``: a torch module, a checkpoint path or weights name, or an
    exported file (``.onnx``, ``.xml``, ``.torchscript``). ``backend``: one of :data:`BACKENDS`
    (default: :func:`default_backend`). ``threads``: the runtime's CPU threads (torch: the
    process's, ``torch.set_num_threads``). ``device``: torch backends only; ``arch`` overrides a
    checkpoint's architecture. ``precision``: what the caller asks the network to compute in
    (:data:`~litepose.runtime.auto.PRECISIONS`): None takes the file's (a checkpoint: fp32); an
    exported file's must be it, except bf16, which OpenVINO computes an fp32 file in."""
    backend_ = _open(source, backend, device=device, threads=threads, arch=arch, bf16=precision == "bf16")
    if precision is not None and precision != backend_.info.precision and not (
        precision == "bf16" and backend_.name == "openvino"
    ):
        what = source if isinstance(source, (str, Path)) else "the model"
        how = "bf16 runs on OpenVINO only" if precision == "bf16" else f"it computes in {backend_.info.precision}"
        raise ValueError(f"{what}: precision {precision} asked for on {backend_.name}, but {how}")
    return backend_


def _open(
    source: Any, backend: str | None, *, device: Any, threads: int | None, arch: str | None, bf16: bool
) -> Backend:
    entry = named_export(source)
    if entry is not None:  # a weights name of an exported network: its verified file, by its backend
        from ..models.weights import download_weights

        source, backend = download_weights(entry), backend or entry.backend
    name = backend or default_backend(source)
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
    check_threads(threads)
    exported = is_exported(source)
    if exported and not Path(source).is_file():
        raise FileNotFoundError(f"{source}: no such file")
    if name in RUNS and name != "torchscript":
        if not exported:
            what = source if isinstance(source, (str, Path)) else f"a {type(source).__name__}"
            raise ValueError(
                f"{what}: the {name} backend runs an exported file: export it first "
                "(litepose.export.open_exported, or litepose.Predictor, which exports on the fly)"
            )
        if not runs_suffix(name, source):
            raise ValueError(f"{source}: the {name} backend cannot run a {Path(source).suffix.lower()} file")
        if name == "onnxruntime":
            from .ort_backend import OnnxRuntimeBackend

            return OnnxRuntimeBackend(source, threads)
        if name == "ncnn":
            from .ncnn_backend import NcnnBackend

            return NcnnBackend(source, threads)
        if name == "executorch":
            from .et_backend import ExecuTorchBackend

            return ExecuTorchBackend(source, threads)
        from .ov_backend import OpenVinoBackend

        return OpenVinoBackend(source, threads, bf16=bf16)
    # torch backends
    from ..device import pick_device

    if threads is not None:
        import torch

        torch.set_num_threads(int(threads))
    dev = pick_device(device)
    if name == "torchscript":
        if not runs_suffix(name, source):
            raise ValueError(f"{source}: the torchscript backend runs a .torchscript file of 'litepose export'")
        from .torch_backend import TorchScriptBackend

        return TorchScriptBackend(source, dev)
    if exported:
        raise ValueError(
            f"{source}: an exported file runs with its own backend ({default_backend(source)}), not {name}"
        )
    from .torch_backend import TorchBackend

    return TorchBackend(torch_model(source, arch), dev, eager=name == "torch-eager")


def torch_model(source: Any, arch: str | None = None) -> Any:
    """The torch module of ``source``: a module as it is, a checkpoint path or weights name loaded."""
    if isinstance(source, (str, Path)):
        from ..models import load_checkpoint

        model, _info = load_checkpoint(source, arch=arch)
        return model
    from torch import nn

    if not isinstance(source, nn.Module):
        raise TypeError(f"expected a model or a checkpoint path, got {type(source).__name__}")
    return source
