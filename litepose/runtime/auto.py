"""``backend="auto"`` (the default): which runtime runs a network, by a measured rule.

- An exported file (``.onnx``, ``.xml``, ...) or a weights name of one runs on its own runtime.
- An in-memory torch module runs on ``torch``: it may still be training and cannot be keyed for
  the export cache, so it is never exported behind the caller's back.
- A checkpoint (a path or weights name) on a CUDA device runs on ``torch``.
- A checkpoint with ``legacy=True`` (the original's decoding, to reproduce its numbers) runs on
  ``torch``, the backend where that is bit-exact.
- A checkpoint on the CPU runs on the first runtime of :data:`CPU_ORDER` for its precision that is
  installed here together with what its export needs; it is exported once into the export cache
  (:mod:`litepose.export.cache`) and loaded from there afterwards.

:data:`CPU_ORDER` is what ``litepose benchmark`` measured on a 2-core AVX-512 VM (the reference
frame, 2 threads; docs/deploy.md gives the figures): in fp32 OpenVINO and ONNX Runtime tie on XS
(38.7 / 38.2 ms whole frame without flip) and OpenVINO is 1.2x faster on S (102.7 / 129.5 ms) and
M, folded torch is last; OpenVINO ran int8 faster than ONNX Runtime (whose int8 was slower than its
own fp32 for S); bf16 runs on OpenVINO only, on a CPU with AVX512-BF16 or AMX. NCNN and ExecuTorch
were slower than both on this x86 CPU and are never chosen here.

Torch-free: choosing for an exported file imports no torch.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..formats import AUTO_BACKEND as AUTO
from ..formats import PRECISIONS, default_backend, export_modules, is_exported

__all__ = [
    "AUTO", "PRECISIONS", "CPU_ORDER", "Choice", "choose_backend", "for_checkpoint", "check_precision", "cpu_has_bf16",
]  # fmt: skip
#: Per precision, the CPU runtimes for a checkpoint, fastest first (measured: module docstring).
CPU_ORDER: dict[str, tuple[str, ...]] = {
    "fp32": ("openvino", "onnxruntime", "torch"),
    "int8": ("openvino", "onnxruntime"),
    "bf16": ("openvino",),
}


@dataclass(frozen=True)
class Choice:
    """The runtime ``auto`` chose and why (one line, for the user)."""

    backend: str
    precision: str
    reason: str


def check_precision(precision: str) -> str:
    """``precision`` when it is one of :data:`PRECISIONS`, else a ValueError naming them."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16; Linux's /proc/cpuinfo)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _installed(backend: str, precision: str) -> bool:
    modules, _extra = export_modules(backend, precision)
    return all(importlib.util.find_spec(m) is not None for m in modules)


def _on_cuda(device: Any) -> bool:
    from ..device import pick_device

    return pick_device(device).type == "cuda"


def choose_backend(source: Any, precision: str = "fp32", device: Any = "auto", *, legacy: bool = False) -> Choice:
    """The backend ``auto`` runs ``source`` on (module docstring), or a ValueError when nothing
    installed here runs it in ``precision``. ``legacy``: decoding as the original did, to reproduce
    its numbers, runs a checkpoint on torch, where that is bit-exact."""
    check_precision(precision)
    from . import named_export

    entry = named_export(source)
    if entry is not None or is_exported(source):
        backend = entry.backend if entry is not None else default_backend(source)
        if precision == "bf16" and backend != "openvino":
            raise ValueError(f"{source}: bf16 runs on OpenVINO only, this file runs on {backend}")
        return Choice(backend, precision, "the file's own runtime")
    if not isinstance(source, (str, Path)):
        if precision != "fp32":
            raise ValueError(
                f"precision {precision} needs a checkpoint file or an exported network, not an in-memory model "
                "(export it: litepose.export.export_model)"
            )
        return Choice("torch", precision, "an in-memory model runs on torch")
    return for_checkpoint(precision, device, legacy=legacy)


def for_checkpoint(precision: str = "fp32", device: Any = "auto", *, legacy: bool = False) -> Choice:
    """The backend ``auto`` runs a checkpoint on, on ``device``, in ``precision``."""
    check_precision(precision)
    if _on_cuda(device):
        if precision != "fp32":
            raise ValueError(f"precision {precision} is for the CPU runtimes; on CUDA litepose runs fp32 torch")
        return Choice("torch", precision, "CUDA device")
    if legacy and precision == "fp32":
        return Choice("torch", precision, "legacy decoding is bit-exact on torch")
    if precision == "bf16" and not cpu_has_bf16():
        raise ValueError("precision bf16 needs a CPU with AVX512-BF16 or AMX; this one has neither")
    for backend in CPU_ORDER[precision]:
        if backend == "torch" or _installed(backend, precision):
            return Choice(backend, precision, f"the fastest {precision} runtime installed here")
    wanted = " or ".join(CPU_ORDER[precision])
    _mods, extra = export_modules(CPU_ORDER[precision][0], precision)
    raise ValueError(f"precision {precision} runs on {wanted}; none is installed: pip install 'litepose[{extra}]'")
