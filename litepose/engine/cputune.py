"""Process settings that make CPU training faster, applied by the trainer while it trains on CPU.

- **Denormal floats flushed to zero** (``torch.set_flush_denormal``): late in training, gradients
  of tiny magnitude make x86 arithmetic take microcode assists that cost ~100x a normal FLOP.
  Flushing numbers below 1.2e-38 to zero changes no result that matters. Restored afterwards.
- **glibc's allocator keeps large blocks** (``mallopt``): PyTorch's CPU allocator does not cache,
  so every activation of a training step (several MB each) was a fresh ``mmap`` and its pages were
  faulted in again on every step. Raising the mmap threshold to its 32 MB maximum and the trim
  threshold to 1 GB lets freed activations be reused from the heap. Process-wide and kept (it is
  only a policy of where freed memory goes); glibc only, skipped elsewhere.

docs/training.md ("Training speed on CPU") gives the measured effect of each.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import platform
from collections.abc import Iterator

import torch

__all__ = ["cpu_training_settings", "keep_freed_memory", "kernel_status"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_tuned = False


def keep_freed_memory() -> bool:
    """Set glibc's mmap threshold to 32 MB and trim threshold to 1 GB (once per process); returns
    whether the allocator is tuned (False where the C library is not glibc)."""
    global _tuned
    if _tuned:
        return True
    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _tuned = bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 1 << 30))
    return _tuned


@contextlib.contextmanager
def cpu_training_settings(enabled: bool = True) -> Iterator[None]:
    """While training on CPU: denormals flushed to zero (restored on exit) and the allocator tuned."""
    if not enabled:
        yield
        return
    keep_freed_memory()
    flushed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if flushed:
            torch.set_flush_denormal(False)


def kernel_status(device: str = "cpu", supernet: bool = False) -> str:
    """One line for a training log: whether the fast CPU kernels are on for a run on ``device``
    (a device type: cpu, cuda, ...), and why not when they are off. Compiles them if needed."""
    from .. import native
    from ..models.fastbn import ENV_ENABLE as BN_ENV
    from ..models.fastbn import fast_bn_enabled
    from ..models.fastconv import ENV_ENABLE as CONV_ENV
    from ..models.fastconv import fast_conv_enabled

    if device != "cpu":
        return f"fast kernels: off (training on {device}; they are CPU kernels)"
    conv, bn = fast_conv_enabled(), fast_bn_enabled() and not supernet
    if not (conv or bn):
        why = f"{CONV_ENV}=0" + (" (the supernet's BatchNorm is aten)" if supernet else f" and {BN_ENV}=0")
        return f"fast kernels: off ({why})"
    if native.load() is None:
        return f"fast kernels: off ({native.unavailable_reason() or 'unavailable'})"
    on = [name for name, used in (("compiled depthwise conv", conv), ("BatchNorm", bn)) if used]
    off = [] if conv else [f"depthwise conv off: {CONV_ENV}=0"]
    if not bn:
        off.append("BatchNorm is aten for the supernet" if supernet else f"BatchNorm off: {BN_ENV}=0")
    return f"fast kernels: on ({', '.join(on)}{''.join('; ' + o for o in off)})"
