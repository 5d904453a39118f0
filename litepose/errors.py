"""Error messages as one line that keeps its meaning: the one place for it.

Many libraries raise multi-line messages (torch's ``Error(s) in loading state_dict for LitePose:``
then the keys on the next lines; YAML's context lines and a caret; OpenVINO's source location first
and the cause last). The command line prints one line per error, so a message is folded, not cut:
its lines are joined, blank and caret-only lines dropped, whitespace squeezed, and only a very long
result is shortened in its middle, keeping the start (what failed) and the end (often the cause).
"""

from __future__ import annotations

import re

__all__ = ["describe", "one_line"]

#: The longest one-line message; longer ones keep their start and end.
MAX_CHARS = 600


def one_line(text: str, limit: int = MAX_CHARS) -> str:
    """``text`` folded into one line of at most ``limit`` characters (see the module docstring)."""
    parts = []
    for line in str(text).splitlines():
        line = " ".join(line.split())
        caret = re.fullmatch(r"[\^~][\^~ ]*([)\]} ]*)", line)  # a caret marking a column (and closing brackets)
        if caret:
            if parts and caret.group(1).strip():
                parts[-1] += caret.group(1).replace(" ", "")
            continue
        if line:
            parts.append(line)
    folded = ""
    for part in parts:
        if not folded:
            folded = part
        elif folded.endswith((":", ";", ",", "(", "[", "{")):
            folded += " " + part
        else:
            folded += "; " + part
    folded = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "?", folded)  # no terminal control characters
    if len(folded) > limit:
        keep = (limit - 5) // 2
        folded = f"{folded[:keep]} ... {folded[-keep:]}"
    return folded


def describe(e: BaseException) -> str:
    """An exception as one line: an ``OSError`` as ``FILE: why`` (its file name when it has one,
    without ``[Errno N]``), anything else as its folded message (its type's name when empty)."""
    if isinstance(e, OSError) and e.strerror:
        where = e.filename if e.filename is not None else None
        other = f" -> {e.filename2}" if getattr(e, "filename2", None) is not None else ""
        text = f"{_name(where)}{other}: {e.strerror}" if where is not None else e.strerror
        return one_line(text)
    text = str(e).strip()
    return one_line(text) if text else type(e).__name__


def _name(filename: object) -> str:
    if isinstance(filename, bytes):
        return filename.decode("utf-8", "backslashreplace")
    return str(filename)
