"""Writing files so that an interruption never leaves a half file: the one place for it.

:func:`atomic_write` writes into a temporary file beside the target, named
``.<name>.<random>.tmp``, then renames it over the target (``os.replace``): a reader sees the old
file or the new one, never a mix, and a run killed while writing leaves the previous file intact.
The temporary file is created like any other output (mode ``0o666`` less the umask), so the
result has the folder's normal permissions, and it is removed when the write fails. Only a
process killed outright (``kill -9``, power loss) can leave one behind:
:func:`remove_stale_temps` clears those of given names when a run starts again.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["atomic_write", "remove_stale_temps", "temp_pattern"]


def temp_pattern(name: str) -> str:
    """The glob pattern of :func:`atomic_write`'s temporary files for a target named ``name``."""
    return f".{name}.*.tmp"


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to fill a temporary file ``tmp`` beside ``path`` (created empty, with the
    normal permissions), then rename it to ``path``; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask applies, as to any output
    try:
        write(tmp)  # opening it again for writing keeps its mode
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def remove_stale_temps(folder: str | Path, names: Iterable[str]) -> list[Path]:
    """Delete the temporary files that interrupted :func:`atomic_write` calls for ``names`` left in
    ``folder``; returns what was removed. Call it only where no other process writes those files."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for name in names:
        for tmp in sorted(folder.glob(temp_pattern(name))):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed
