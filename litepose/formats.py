"""The one table of exported-file formats and backends: what ``litepose export`` writes, which
file suffix says so, which backend runs it, and which optional packages each needs.

Export (:mod:`litepose.export`), the runtime (:mod:`litepose.runtime`), the latency table
(:mod:`litepose.latency`) and the CLI's ``--format`` / ``--backend`` choices all read it, so a
new format is added here once. A leaf module: it imports nothing of litepose and no runtime
(no torch, onnx or openvino), so the torch-free paths can ask :func:`is_exported` freely.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Format", "FORMATS", "BACKENDS", "FILE_SUFFIXES", "RUNTIME_MODULES", "is_exported", "default_backend",
    "format_for_backend", "runs_suffix", "export_modules", "AUTO_BACKEND", "PRECISIONS", "file_precision",
]  # fmt: skip


@dataclass(frozen=True)
class Format:
    """One format of ``litepose export``.

    ``suffixes``: the file name endings it is known by (the first is what export writes);
    ``backend``: the backend that runs such a file by default; ``exporter``: the function of
    :mod:`litepose.export` that writes it; ``modules`` / ``extra``: the Python modules the export
    needs beyond torch and the pip extra that brings them; ``int8_modules``: what an int8 export
    needs on top, ``None`` when the format has no int8 version."""

    name: str
    suffixes: tuple[str, ...]
    backend: str
    exporter: str
    modules: tuple[str, ...] = ()
    extra: str = ""
    int8_modules: tuple[str, ...] | None = None

    @property
    def suffix(self) -> str:
        """The suffix an export of this format is written with."""
        return self.suffixes[0]

    @property
    def int8(self) -> bool:
        """Whether ``litepose export --int8`` makes this format."""
        return self.int8_modules is not None


_ONNX = Format("onnx", (".onnx",), "onnxruntime", "export_onnx", ("onnx",), "export", ("onnxruntime",))
_IR = Format("openvino", (".xml",), "openvino", "export_openvino", ("openvino", "onnx"), "openvino,export", ("nncf",))
_TS = Format("torchscript", (".torchscript",), "torchscript", "export_torchscript")
# edge runtimes (docs/deploy.md): NCNN (pnnx converts the traced network; ``.ncnn.param`` text graph +
# ``.ncnn.bin`` weights, the metadata in a sidecar ``.ncnn.param.json``; int8: litepose's own scales)
# and ExecuTorch (a ``.pte`` program lowered to XNNPACK, the metadata inside as a constant method;
# int8: PT2E quantisation).
# ``.ncnn.param`` is what export writes; a file is known by its last suffix, ``.param``.
_NCNN = Format("ncnn", (".ncnn.param", ".param"), "ncnn", "export_ncnn", ("pnnx",), "ncnn", ())
_PTE = Format("executorch", (".pte",), "executorch", "export_executorch", ("executorch",), "executorch", ("torchao",))
#: The formats of ``litepose export``, in the order the CLI lists them (``--format``).
FORMATS: dict[str, Format] = {f.name: f for f in (_ONNX, _IR, _TS, _NCNN, _PTE)}

#: Where a network runs (``--backend``): the torch ones take a checkpoint or a module, the others
#: an exported file (:data:`RUNS`).
BACKENDS = ("torch", "torch-eager", "torchscript", "onnxruntime", "openvino", "ncnn", "executorch")

#: The suffixes each file-running backend runs (OpenVINO reads ONNX files too).
RUNS: dict[str, tuple[str, ...]] = {
    "torchscript": (".torchscript",),
    "onnxruntime": (".onnx",),
    "openvino": (".xml", ".onnx"),
    "ncnn": (".param",),
    "executorch": (".pte",),
}

#: The Python modules a backend needs to run (beyond numpy; the torch backends: torch).
RUNTIME_MODULES: dict[str, tuple[str, ...]] = {
    "onnxruntime": ("onnxruntime",), "openvino": ("openvino",), "ncnn": ("ncnn",), "executorch": ("executorch",),
}  # fmt: skip

#: Exported-file suffix -> the backend that runs it by default.
FILE_SUFFIXES: dict[str, str] = {s: f.backend for f in FORMATS.values() for s in f.suffixes}


def _suffix(source: Any) -> str | None:
    """The last suffix of a path, lower case (``a.ncnn.param`` -> ``.param``); None for a non-path."""
    return Path(source).suffix.lower() if isinstance(source, (str, Path)) else None


def is_exported(source: Any) -> bool:
    """Whether ``source`` is a path (str or Path) of an exported network, by its suffix."""
    return _suffix(source) in FILE_SUFFIXES


def default_backend(source: Any) -> str:
    """The backend for a weights file by its suffix (``.onnx``, ``.xml``, ``.torchscript``, ``.param``,
    ``.pte``), else ``torch``."""
    return FILE_SUFFIXES.get(_suffix(source) or "", "torch")


def runs_suffix(backend: str, source: Any) -> bool:
    """Whether ``backend`` (a file-running one, :data:`RUNS`) can run the file ``source``."""
    return _suffix(source) in RUNS.get(backend, ())


def format_for_backend(backend: str) -> Format | None:
    """The format whose files ``backend`` runs by default (``onnxruntime`` -> onnx), None for torch."""
    return next((f for f in FORMATS.values() if f.backend == backend), None)


def export_modules(backend: str, precision: str = "fp32") -> tuple[tuple[str, ...], str]:
    """The Python modules needed to export a torch model for ``backend`` and run it there, in
    ``precision`` (fp32 / int8), and the pip extra that brings them: ``((), "")`` for torch."""
    fmt = format_for_backend(backend)
    if fmt is None:
        return (), ""
    mods = (*RUNTIME_MODULES.get(backend, ()), *fmt.modules, *((fmt.int8_modules or ()) if precision == "int8" else ()))
    return tuple(dict.fromkeys(mods)), fmt.extra

#: ``backend="auto"`` (the default of Predictor and the CLI): :mod:`litepose.runtime.auto` chooses.
AUTO_BACKEND = "auto"
#: What a network can compute in (``precision=``, ``--precision``): bf16 is a runtime setting of an
#: fp32 file (OpenVINO), int8 a quantised file.
PRECISIONS = ("fp32", "bf16", "int8")


def file_precision(precision: str) -> str:
    """The precision of the exported file that computes in ``precision``: int8 is a quantised file,
    fp32 and bf16 (a runtime setting) run an fp32 file."""
    return "int8" if precision == "int8" else "fp32"
