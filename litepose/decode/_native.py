"""The decoder's compiled kernels (``litepose/native/_csrc/decode.c``, built into the library of
:mod:`litepose.native`): the numpy merge's 2x upsampling, the peak window test, the assignment
solver and refine's search, each computing exactly what its Python version computes. None when
that library cannot be built here (no C compiler): the decoder then runs its Python versions,
silently; a failed build warns once (``native.load``)."""

from __future__ import annotations

import ctypes
import functools
from typing import Any

__all__ = ["kernel"]

_P, _I, _I64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64
_SIGNATURES = {
    "litepose_min_cost_assignment": [_P, _I, _I, _P],
    "litepose_refine_search": [_P, _P, _I64, _I64, _I64, _I, _I, _I, _P, _I, _P],
    "litepose_refine_search_joints": [_P, _P, _I64, _I64, _I64, _I64, _I, _I, _I, _P, _P, _I, _P],
    "litepose_tag_sq": [_P, _P, _I64, _I64, _I64, _I, _P, _P],
    "litepose_peaks": [_P, _I, _I, _I, ctypes.c_float, _I, _I64, _P, _P, _P, _P],
    "litepose_merge_up2": [_P, _I64, _P, _I64, _I, _I, _I, _I, _I, _P, _I, _P, _P, _I64],
    "litepose_up2": [_P, _I64, _I, _I, _P],
    "litepose_group_people": [_P, _P, _I, _P, _I, _P, ctypes.c_double, *[_P] * 8],
    "litepose_peak_neighbours": [_P, _I, _I, _P, _P, _P, _I64, ctypes.c_float, _P],
    "litepose_parabola_offsets": [_P, _P, _P, _I64, _I, _I, _P, _P],
    "litepose_mean2": [_P, _P, _I64, _P],
}
_RESTYPES = {"litepose_peaks": ctypes.c_int64}
_ABI = 2
#: set to False to run the Python versions only (the tests compare both)
enabled = True


@functools.lru_cache(maxsize=1)
def _library() -> Any:
    from .. import native

    lib = native.load()
    if lib is None or getattr(lib, "litepose_decode_abi_version", lambda: None)() != _ABI:
        return None
    for name, argtypes in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = _RESTYPES.get(name, ctypes.c_int)
        fn.argtypes = argtypes
    return lib


def kernel(name: str) -> Any:
    """The compiled function ``name`` of :data:`_SIGNATURES`, or None (unavailable or disabled)."""
    if not enabled:
        return None
    lib = _library()
    return None if lib is None else getattr(lib, name)
