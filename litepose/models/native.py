"""litepose's compiled CPU training kernels: the C sources in ``_csrc/``, built into one library.

The library is compiled on first use with the system C compiler (``-O3 -march=native -fopenmp``)
into litepose's home folder (``$LITEPOSE_HOME``, default ``~/.cache/litepose``), under a name
keyed by the sources, compiler, flags and CPU, written atomically and reused by later processes;
it is loaded with ctypes. Its users (:mod:`.fastconv`, :mod:`.fastbn`) fall back to aten when it
is unavailable: silently without a C compiler, after one warning when compilation fails.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

from ..home import ENV_HOME, home_dir

__all__ = ["SOURCES", "available", "load"]

ENV_CACHE = ENV_HOME  # the library lives in litepose's home folder
SOURCES = tuple(sorted(Path(__file__).with_name("_csrc").glob("*.c")))
CFLAGS = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC")
#: (function, ABI version) that each source exports; a library without them is rebuilt
_ABI = {"litepose_dw_abi_version": 2, "litepose_bn_abi_version": 3}
_P, _I, _I64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64
#: argument types of the exported kernels (all return int: 0 on success)
_SIGNATURES = {
    "litepose_dw_wgrad": [_P] * 5 + [_I] * 9,
    "litepose_dw_dgrad": [_P] * 6 + [_I] * 6,
    "litepose_bn_forward": [_P, _P, _P, _P, ctypes.c_double, _I64, _I, _I, _P, _I],
    "litepose_bn_backward": [_P, _P, _P, _P, _I64, _I, _I, _P, _I],
}

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_lib_failed = False


def _cache_dir() -> Path:
    return home_dir()


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _machine_id() -> str:
    """What ``-march=native`` depends on: the CPU model and feature flags (Linux), else platform."""
    parts = [platform.machine(), platform.system()]
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key = line.split(":", 1)[0].strip()
                if key in ("model name", "flags", "Features", "CPU part"):
                    parts.append(line.strip())
                if not line.strip() and len(parts) > 2:
                    break  # the first processor is enough
    except OSError:
        parts.append(platform.processor())
    return "\n".join(parts)


def _build_key(cc: str) -> str:
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        version = ""
    h = hashlib.sha256()
    parts = [*(s.read_bytes() for s in SOURCES), cc.encode(), version.encode(), " ".join(CFLAGS).encode()]
    for part in (*parts, _machine_id().encode()):
        h.update(part)
        h.update(b"\0")
    return h.hexdigest()[:20]


def library_name(cc: str) -> str:
    """The cached library's file name for compiler ``cc``."""
    return f"kernels-{_build_key(cc)}.so"


def _compile(cc: str, out: Path) -> None:
    """Compile SOURCES to ``out`` atomically (a temporary name in the same folder, then os.replace)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}-", suffix=".so", dir=out.parent)
    os.close(fd)
    try:
        cmd = [cc, *CFLAGS, "-o", tmp, *map(str, SOURCES)]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if res.returncode != 0:
            raise RuntimeError(f"{cc} exited with {res.returncode}: {(res.stderr or res.stdout).strip()[-2000:]}")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _open(path: Path) -> ctypes.CDLL:
    """Load a compiled library and declare its functions (raises if it is not ours or stale)."""
    lib = ctypes.CDLL(str(path))
    for fn, version in _ABI.items():
        if getattr(lib, fn)() != version:
            raise RuntimeError(f"{path}: unexpected ABI version of {fn}")
    for fn, argtypes in _SIGNATURES.items():
        f = getattr(lib, fn)
        f.restype = ctypes.c_int
        f.argtypes = argtypes
    return lib


def load() -> ctypes.CDLL | None:
    """The compiled kernel library (compiled on first use), or None after one warning."""
    global _lib, _lib_failed
    if _lib is not None or _lib_failed:
        return _lib
    with _lock:
        if _lib is not None or _lib_failed:
            return _lib
        try:
            cc = _compiler()
            if cc is None:
                _lib_failed = True  # no compiler: plain aten, silently
                return None
            name = library_name(cc)
            path = _cache_dir() / name
            lib = None
            if path.is_file():
                try:
                    lib = _open(path)
                except (OSError, AttributeError, RuntimeError):
                    lib = None  # unreadable or stale: build it again
            if lib is None:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    _compile(cc, path)
                except PermissionError:  # read-only cache: build for this process only
                    path = Path(tempfile.mkdtemp(prefix="litepose-")) / name
                    _compile(cc, path)
                lib = _open(path)
            _lib = lib
        except Exception as e:  # never break training over this
            _lib_failed = True
            warnings.warn(
                f"litepose: the fast CPU training kernels are unavailable ({e}); training uses plain aten "
                "(set LITEPOSE_FAST_CONV=0 and LITEPOSE_FAST_BN=0 to silence this)",
                RuntimeWarning,
                stacklevel=3,
            )
    return _lib


def available() -> bool:
    """True if the library is compiled and loaded (compiles it on the first call)."""
    return load() is not None
