"""Reading JSON files with errors that name the file, and writing them whole: the one place for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["read_json", "write_json"]


def read_json(path: str | Path, what: str = "file") -> Any:
    """Parse ``path``; a missing file, invalid JSON or a non-text file is a clear error naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text JSON file") from None


def write_json(path: str | Path, obj: Any, indent: int | None = None) -> Path:
    """Write ``obj`` as JSON atomically (:func:`litepose.files.atomic_write`): an interrupted write
    leaves the previous file, never a half one, so the file is always valid JSON."""
    from ..files import atomic_write

    text = json.dumps(obj, indent=indent)
    return atomic_write(path, lambda tmp: tmp.write_text(text))
