"""litepose's compiled CPU kernels (training's depthwise convolution and BatchNorm, the decoder's
merge, peak search, grouping, assignment and refinement): the C sources in ``_csrc/``, built into
one library.

The library is compiled on first use with the system C compiler (``-O3 -march=native -fopenmp``)
into ``kernels/`` of litepose's home folder (``$LITEPOSE_HOME``, default ``~/.cache/litepose``),
under a name keyed by the sources, compiler, flags and CPU, written atomically and reused by later
processes; it is loaded with ctypes. A folder or library that another user could change is never
loaded from (a warning, then a per-user temporary folder); a home folder that cannot be written
falls back to that temporary folder silently. Its users (:mod:`litepose.models.fastconv`,
:mod:`litepose.models.fastbn`, :mod:`litepose.decode`) fall back to their aten / numpy versions when
the library is unavailable: silently without a C compiler, after one warning when compilation
fails; :func:`unavailable_reason` says why, for the training log
(:func:`litepose.engine.cputune.kernel_status`). A package of its own, below the networks and the
decoder that use it.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import os
import platform
import shutil
import stat
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

from ..home import ENV_HOME, home_dir

__all__ = ["SOURCES", "available", "load", "unavailable_reason"]

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
_reason: str | None = None  # why the library is unavailable (status)


def _cache_dir() -> Path:
    """Where the library is kept between runs: ``kernels/`` in litepose's home folder."""
    return home_dir() / "kernels"


def _unsafe(path: Path) -> str | None:
    """Why another user could change what is loaded from ``path`` (a folder or the library), or
    None: it must be owned by this user and not writable by the group or others."""
    st = os.stat(path)
    uid = os.getuid() if hasattr(os, "getuid") else None
    if uid is not None and st.st_uid != uid:
        return f"it is owned by another user (uid {st.st_uid})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"other users can write to it (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def _temp_cache() -> Path:
    """The fallback folder when the home folder cannot be used: one per user in the system's temp
    folder (mode 0700, reused by later runs, so nothing piles up), or, when that name is taken by
    a folder another user could change, a private one removed when the process exits."""
    uid = os.getuid() if hasattr(os, "getuid") else os.getpid()
    folder = Path(tempfile.gettempdir()) / f"litepose-kernels-{uid}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        why = None if folder.is_dir() and not folder.is_symlink() else "it is not a plain folder"
        why = why or _unsafe(folder)
    except OSError as e:
        why = e.strerror or str(e)
    if why is None:
        return folder
    private = Path(tempfile.mkdtemp(prefix="litepose-kernels-"))
    atexit.register(shutil.rmtree, private, True)
    warnings.warn(
        f"litepose: {folder} is not used for the compiled kernels ({why}); they are built in {private}, "
        "removed at exit",
        RuntimeWarning,
        stacklevel=4,
    )
    return private


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
    """Compile SOURCES into the library ``out``."""
    cmd = [cc, *CFLAGS, "-o", str(out), *map(str, SOURCES)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise RuntimeError(f"{cc} exited with {res.returncode}: {(res.stderr or res.stdout).strip()[-2000:]}")


def _build(cc: str, out: Path) -> ctypes.CDLL:
    """Compile into a temporary name beside ``out``, load the library from that name, then rename it
    to ``out`` (atomic). Loading from a name used once only means a rebuild of a path this process
    already loaded is never answered with the old handle (the loader keys handles by file name)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}-", suffix=".so", dir=out.parent)
    os.close(fd)
    try:
        _compile(cc, Path(tmp))
        os.chmod(tmp, 0o755)  # never group- or world-writable, whatever the umask
        lib = _open(Path(tmp))
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return lib


def _load_from(cc: str, folder: Path) -> ctypes.CDLL:
    """The library in ``folder`` (made when missing), built there when absent, stale or broken.
    ``OSError``: the folder cannot be made or written."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / library_name(cc)
    if path.is_file() and _unsafe(path) is None:
        try:
            return _open(path)
        except (OSError, AttributeError, RuntimeError):
            pass  # unreadable or stale: build it again
    return _build(cc, path)


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
    """The compiled kernel library (compiled on first use), or None (:func:`status` says why).

    It is kept in ``$LITEPOSE_HOME/kernels``. When that folder cannot be made or written (a
    read-only file system, no permission), or could be changed by another user (not owned by this
    user, or writable by its group or others: a library planted there would run as this user; a
    warning says so), the per-user temporary folder is used instead (:func:`_temp_cache`)."""
    global _lib, _lib_failed, _reason
    if _lib is not None or _lib_failed:
        return _lib
    with _lock:
        if _lib is not None or _lib_failed:
            return _lib
        try:
            cc = _compiler()
            if cc is None:
                _lib_failed = True  # no compiler: plain aten, silently
                _reason = "no C compiler (cc, gcc or clang) on PATH"
                return None
            folder = _cache_dir()
            lib = None
            why = _unsafe(folder) if folder.is_dir() else None
            if why is not None:
                warnings.warn(
                    f"litepose: the compiled kernels in {folder} are not loaded: {why} (chmod go-w it, or set "
                    f"{ENV_HOME} to a folder of your own); the per-user temporary folder is used instead",
                    RuntimeWarning,
                    stacklevel=3,
                )
            else:
                try:
                    lib = _load_from(cc, folder)
                except OSError:  # read-only or not ours to write: build for this user in the temp folder
                    lib = None
            if lib is None:
                lib = _load_from(cc, _temp_cache())
            _lib = lib
        except Exception as e:  # never break training over this
            _lib_failed = True
            _reason = f"the kernels did not compile or load ({e})"
            warnings.warn(
                f"litepose: the fast CPU training kernels are unavailable ({e}); training uses plain aten "
                "(set LITEPOSE_FAST_CONV=0 and LITEPOSE_FAST_BN=0 to silence this)",
                RuntimeWarning,
                stacklevel=3,
            )
    return _lib


def unavailable_reason() -> str | None:
    """Why the library is unavailable (after :func:`load` returned None), else None."""
    return _reason


def available() -> bool:
    """True if the library is compiled and loaded (compiles it on the first call)."""
    return load() is not None
