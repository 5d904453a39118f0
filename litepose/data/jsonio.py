"""Reading JSON (and YAML) with errors that name the source, and writing JSON whole: the one place for it.

Every JSON the library reads (annotations, results, architectures, latency tables, search states,
model metadata, metrics lines) goes through :func:`parse_json` or :func:`read_json`, and every YAML
through :func:`read_yaml`. Invalid text, a non-UTF-8 file and nesting deeper than the parser's
recursion limit (``[[[[...]]]]``: Python's parsers raise RecursionError there) all become one
ValueError naming the file, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["parse_json", "read_json", "read_yaml", "write_json"]

_TOO_DEEP = "nested too deeply to parse (over ~1000 levels of [ or {)"


def parse_json(text: str | bytes, source: str) -> Any:
    """Parse JSON ``text``; invalid, non-UTF-8 or too deeply nested text is a ValueError starting with
    ``source`` (a file name, ``file, line N``, ``model.onnx: metadata key``...)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{source}: not valid JSON ({e})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{source}: not a text JSON file") from None
    except RecursionError:
        raise ValueError(f"{source}: {_TOO_DEEP}") from None


def read_json(path: str | Path, what: str = "file") -> Any:
    """Parse ``path``; a missing file, invalid JSON, a non-text file or too deep nesting is a clear
    error naming it (FileNotFoundError when missing, else ValueError or OSError)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    return parse_json(path.read_bytes(), str(path))


def read_yaml(path: str | Path, what: str = "file") -> Any:
    """Parse the YAML (or JSON, a subset of it) file ``path``, with the errors of :func:`read_json`."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        return yaml.safe_load(path.read_bytes())
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({e})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text YAML file") from None
    except RecursionError:
        raise ValueError(f"{path}: {_TOO_DEEP}") from None


def write_json(path: str | Path, obj: Any, indent: int | None = None) -> Path:
    """Write ``obj`` as JSON atomically (:func:`litepose.files.atomic_write`): an interrupted write
    leaves the previous file, never a half one, so the file is always valid JSON."""
    from ..files import atomic_write

    text = json.dumps(obj, indent=indent)
    return atomic_write(path, lambda tmp: tmp.write_text(text))
