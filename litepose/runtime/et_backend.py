"""ExecuTorch backend: a ``.pte`` program of ``litepose export --format executorch`` (XNNPACK, fp32 or int8).

The program holds the metadata itself: besides ``forward`` it has a constant method
:data:`METADATA_METHOD` that returns the ``litepose.<key>`` strings of
:mod:`litepose.runtime.metadata` as one JSON text. ``forward`` takes one sample of one size,
(1, 3, S, S) (:mod:`litepose.export.executorch` says why): the backend reports S as its
``static_size``, so the predictor letterboxes every image to it, and a batch (and the flip test's
mirrored copy) runs sample by sample. The Python runtime of the ``executorch`` package passes torch
tensors, so this backend needs torch (a phone app links the C++ runtime instead: docs/deploy.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import one_line
from .base import ArrayBackend, missing
from .metadata import from_strings

__all__ = ["ExecuTorchBackend", "METADATA_METHOD", "quiet_executorch", "read_metadata"]

#: The constant method of a litepose ``.pte`` that returns its metadata (a JSON object of strings).
METADATA_METHOD = "litepose_metadata"


@contextlib.contextmanager
def quiet_executorch() -> Iterator[None]:
    """Hold back what loading the ExecuTorch runtime prints without being asked: torchao's warnings
    about CUDA kernels a CPU install cannot load, torch's notice about an Enum registration, and the
    runtime's own C++ log lines (CPU probing, thread pool size) written straight to stderr. Errors
    still raise (and are reported by the callers, naming the file)."""
    loggers = [logging.getLogger(name) for name in ("torchao", "torch.utils._pytree")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _runtime() -> Any:
    try:
        from executorch.runtime import Runtime
    except ImportError:
        raise missing("executorch", "executorch", "running an ExecuTorch program") from None
    return Runtime.get()


def read_metadata(program: Any, where: str) -> dict[str, str]:
    """The litepose metadata strings of a loaded ExecuTorch program (empty when it has none)."""
    if METADATA_METHOD not in program.method_names:
        return {}
    method = program.load_method(METADATA_METHOD)
    values = method.execute([]) if method is not None else []
    try:
        props = json.loads(values[0])
    except (IndexError, TypeError, ValueError):
        raise ValueError(f"{where}: its {METADATA_METHOD} method holds no JSON") from None
    return {str(k): str(v) for k, v in props.items()}


class ExecuTorchBackend(ArrayBackend):
    """An ExecuTorch program run by the ``executorch`` package's runtime (XNNPACK delegate on the CPU);
    ``threads``: XNNPACK's thread pool size (a process-wide setting of the runtime)."""

    name = "executorch"

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        try:
            import torch
        except ImportError:
            raise missing("torch", "executorch", f"{path}: running an ExecuTorch program from Python") from None
        self.path = Path(path)
        with quiet_executorch():  # loading and the XNNPACK delegate's set-up log to stderr
            self._load(threads)
        self._torch = torch

    def _load(self, threads: int | None) -> None:
        path = self.path
        runtime = _runtime()
        try:  # from bytes: the program owns its buffer, the file may go (a temporary export)
            self.program = runtime.load_program(self.path.read_bytes())
        except OSError:
            raise
        except Exception as e:  # the runtime raises RuntimeError for files that are not programs
            raise ValueError(f"{path}: ExecuTorch cannot load it ({one_line(str(e), 300)})") from None
        if "forward" not in self.program.method_names:
            raise ValueError(f"{path}: an ExecuTorch program without a forward method")
        props = read_metadata(self.program, str(path))
        super().__init__(from_strings(props, str(path)))
        if threads:
            from executorch.extension.pybindings import portable_lib

            portable_lib._unsafe_reset_threadpool(int(threads))
        self.method = self.program.load_method("forward")
        meta = self.program.metadata("forward")
        shape = tuple(meta.input_tensor_meta(0).sizes()) if meta.num_inputs() == 1 else ()
        if len(shape) != 4 or shape[:2] != (1, 3) or shape[2] != shape[3]:
            raise ValueError(f"{path}: its forward takes {shape}, not one (1, 3, S, S) image")
        self.static_size = int(shape[2])

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        torch = self._torch
        if x.shape[2:] != (self.static_size, self.static_size):
            raise ValueError(f"{self.path}: takes {self.static_size}x{self.static_size} inputs, got {x.shape[2:]}")
        per_sample = []
        for sample in x:
            out = self.method.execute([torch.from_numpy(np.ascontiguousarray(sample[None]))])
            per_sample.append([o.numpy() for o in out])
        return [np.concatenate(maps) for maps in zip(*per_sample)]
