"""The export cache: a checkpoint exported once per runtime, precision and input size, then reused.

``backend="auto"`` (and an explicit ONNX Runtime / OpenVINO backend asked to run a checkpoint)
exports the checkpoint into ``exports/`` of litepose's home folder (``$LITEPOSE_HOME``, default
``~/.cache/litepose``) under a key made of the checkpoint file's sha256, the architecture override,
the format, the precision, the input size, and the versions of litepose, torch and the runtime, so
a changed checkpoint or an upgraded runtime never reuses a stale file.

Each entry is a folder ``exports/<key>/`` holding the exported file(s) and ``entry.json`` (what it
was made from). It is written in a temporary folder beside it and renamed into place, so a reader
sees a whole entry or none; two processes exporting the same key at once both finish, the first
rename wins and the other's copy is discarded. The folder is private (mode 0700). Deleting it, or
any entry, is always safe: the next run exports again (:func:`clear` does it). A home folder that
cannot be written is not an error: the export then goes to a temporary folder for this process.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..files import sha256
from ..formats import RUNTIME_MODULES, file_precision, format_for_backend
from ..home import home_dir

__all__ = ["cache_dir", "cache_key", "cached_export", "clear", "entries"]

_ENTRY = "entry.json"


def cache_dir() -> Path:
    """Where exported checkpoints are kept: ``exports/`` in litepose's home folder."""
    return home_dir() / "exports"


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # not installed as a distribution (a source checkout): its own attribute
        mod = sys.modules.get(module)
        return str(getattr(mod, "__version__", "?"))


def cache_key(
    checkpoint: Path, backend: str, precision: str, input_size: int | None, arch: str | None
) -> dict[str, Any]:
    """What an entry depends on (its folder name is a hash of it); ``input_size`` None: the
    checkpoint's own, which its hash fixes."""
    import torch

    from .. import __version__

    fmt = _format(backend)
    return {
        "checkpoint_sha256": sha256(checkpoint),
        "arch": arch,
        "format": fmt.name,
        "precision": precision,
        "input_size": None if input_size is None else int(input_size),
        "litepose": __version__,
        "torch": torch.__version__,
        "runtime": {m: _version(m) for m in RUNTIME_MODULES.get(backend, ())},
    }


def _format(backend: str) -> Any:
    fmt = format_for_backend(backend)
    if fmt is None:
        raise ValueError(f"the {backend} backend runs no exported file")
    return fmt


def cached_export(
    checkpoint: str | Path,
    backend: str,
    *,
    precision: str = "fp32",
    input_size: int | None = None,
    arch: str | None = None,
    log: Any = None,
) -> Path:
    """The exported file of ``checkpoint`` for ``backend`` in ``precision`` (bf16: the fp32 file,
    the runtime computes in bf16), from the cache, exporting it first when it is not there.
    ``log``: called with one line when an export is made."""
    from ..models import load_checkpoint
    from . import export_model

    path = Path(checkpoint)
    stored = file_precision(precision)
    key = cache_key(path, backend, stored, input_size, arch)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    fmt = _format(backend)
    name = f"model{fmt.suffix}"
    root = cache_dir()
    entry = root / digest
    if (entry / _ENTRY).is_file() and (entry / name).is_file():
        return entry / name
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        work = Path(tempfile.mkdtemp(prefix=f".{digest}.", dir=root))
    except OSError:  # a read-only or full home: export for this process only
        work = Path(tempfile.mkdtemp(prefix="litepose-export-"))
        entry = work
    if log is not None:
        what = f"{fmt.name}{' int8' if stored == 'int8' else ''}"
        log(f"exporting {path.name} to {what} once, for {backend} (cached in {entry})")
    try:
        model, _info = load_checkpoint(path, arch=arch)
        export_model(model, fmt.name, work / name, input_size=input_size, int8=stored == "int8")
        (work / _ENTRY).write_text(json.dumps({**key, "checkpoint": str(path.resolve()), "backend": backend}, indent=1))
        if work != entry:
            try:
                os.rename(work, entry)  # atomic; fails when another process got there first
            except OSError:
                if not (entry / _ENTRY).is_file():
                    raise
                shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        if work != entry:
            shutil.rmtree(work, ignore_errors=True)
        raise
    return entry / name


def entries() -> list[dict[str, Any]]:
    """The cache's entries: each ``entry.json`` with its ``folder`` and ``bytes`` on disk."""
    out = []
    root = cache_dir()
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        meta = folder / _ENTRY
        if folder.name.startswith(".") or not meta.is_file():
            continue
        try:
            row = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
        out.append({**row, "folder": str(folder), "bytes": size})
    return out


def clear() -> int:
    """Delete the export cache (entries and unfinished exports); returns how many folders went."""
    root = cache_dir()
    if not root.is_dir():
        return 0
    gone = 0
    for folder in root.iterdir():
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)
            gone += 1
    return gone

