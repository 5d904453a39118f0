"""The generated part of docs/cli.md, read from the parsers: which verb takes which shared option
group, and every verb's options with their defaults.

``python -m litepose.commands._reference docs/cli.md`` rewrites that part in place; a test checks
that the file holds what :func:`render` gives.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._options import GROUPS

BEGIN = "<!-- generated from the parsers (python -m litepose.commands._reference docs/cli.md); do not edit by hand -->"
END = "<!-- end of the generated part -->"


def verb_parsers() -> dict[str, argparse.ArgumentParser]:
    """Each verb's parser, in the command line's order."""
    from ..cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _options(p: argparse.ArgumentParser) -> list[argparse.Action]:
    """The options ``--help`` shows (not ``-h`` itself, nor refused old names)."""
    return [a for a in p._actions if not isinstance(a, argparse._HelpAction) and a.help != argparse.SUPPRESS]


def _name(a: argparse.Action) -> str:
    return a.option_strings[-1] if a.option_strings else a.metavar or a.dest


def _group_of(p: argparse.ArgumentParser, a: argparse.Action) -> str:
    """The shared group an option sits in (its argparse group's title), or "" for the verb's own."""
    for g in p._action_groups:
        if a in g._group_actions and g.title in GROUPS:
            return g.title
    return ""


def _default(a: argparse.Action) -> str:
    if a.required:
        return "required"
    v: Any = a.default
    if isinstance(a, argparse._StoreTrueAction):
        return "off"
    if v is None or v == []:
        return "-"
    if isinstance(v, tuple | list):
        return ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v)
    return f"{v:g}" if isinstance(v, float) else str(v)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def group_table(parsers: dict[str, argparse.ArgumentParser]) -> str:
    """Verbs x shared groups: ``yes`` (every option of the group), the options taken, or ``-``."""
    lines = ["| verb | " + " | ".join(GROUPS) + " |", "|---" * (len(GROUPS) + 1) + "|"]
    for verb, p in parsers.items():
        cells = []
        for title, flags in GROUPS.items():
            taken = [_name(a) for a in _options(p) if _group_of(p, a) == title]
            if title == "output" and taken:
                out = next(a for a in _options(p) if _name(a) == "--output")
                cells.append("folder" if out.metavar == "DIR" else "file")
            elif taken and len(taken) == len(flags):
                cells.append("yes")
            else:
                cells.append(", ".join(f"`{t}`" for t in taken) or "-")
        lines.append(f"| `{verb}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verb_table(p: argparse.ArgumentParser) -> str:
    """One verb's options: name, shared group, default, help."""
    lines = ["| option | group | default | help |", "|---|---|---|---|"]
    for a in _options(p):
        name = _name(a) if a.option_strings else f"{_name(a)} (positional)"
        group = _group_of(p, a) or "own"
        lines.append(f"| `{_cell(name)}` | {group} | `{_cell(_default(a))}` | {_cell(a.help or '')} |")
    return "\n".join(lines)


def render() -> str:
    """The generated part of docs/cli.md, markers included."""
    parsers = verb_parsers()
    parts = [BEGIN, "", "### Which verb takes which group", "", group_table(parsers)]
    for verb, p in parsers.items():
        parts += ["", f"### `litepose {verb}`", "", p.description or "", "", verb_table(p)]
    parts += ["", END]
    return "\n".join(parts)


def generated_part(text: str) -> str:
    """The part of ``text`` between the markers, markers included ("" when absent)."""
    if BEGIN not in text or END not in text:
        return ""
    return text[text.index(BEGIN) : text.index(END) + len(END)]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m litepose.commands._reference docs/cli.md", file=sys.stderr)
        return 2
    path = Path(argv[0])
    text = path.read_text()
    old = generated_part(text)
    if not old:
        print(f"{path}: the markers of the generated part are missing", file=sys.stderr)
        return 2
    path.write_text(text.replace(old, render()))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
