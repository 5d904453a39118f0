"""The ``litepose`` command line: one entry point, a few verbs, one option style.

Each verb lives in ``litepose/commands/<verb>.py`` and defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Options that several verbs take come from
:mod:`litepose.commands._options`, so they mean the same everywhere (docs/cli.md lists which
verb takes which). Command modules keep heavy imports inside ``run`` so that ``litepose --help``
stays fast.

User errors (a missing file, a bad value: ``FileNotFoundError`` / ``ValueError``, which
``CheckpointError``, ``KeypointSetError`` and ``MediaError`` are) are one line on stderr and exit
code 2. With ``--json`` stdout holds exactly one JSON object: the command's summary, or
``{"error": ..., "exit_code": ...}``; everything else the command prints goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from . import __version__

VERBS = ("predict", "val", "train", "demo", "synth", "transfer", "profile", "weights")


class UsageError(Exception):
    """Bad command-line words (argparse's error), raised instead of exiting so that ``main`` decides."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.format_usage()}{self.prog}: error: {message}")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = _Parser(prog="litepose", description="LitePose: real-time multi-person 2D pose estimation.")
    parser.add_argument("--version", action="version", version=f"litepose {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb in VERBS:
        mod = importlib.import_module(f"litepose.commands.{verb}")
        p = sub.add_parser(verb, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        return _finish("--json" in argv, sys.stdout, None, str(e), 2)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    as_json = bool(getattr(args, "json", False))
    stdout = sys.stdout
    redirect = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    try:
        with redirect:
            from .commands._options import apply_threads

            apply_threads(args)
            code = int(args._run(args) or 0)
    except KeyboardInterrupt:
        return _finish(as_json, stdout, None, "interrupted", 130)
    except (FileNotFoundError, ValueError) as e:
        # User errors: one clear line, no traceback.
        return _finish(as_json, stdout, None, f"litepose {args.verb}: error: {e}", 2)
    summary = getattr(args, "_summary", None)
    if as_json and summary is None:
        raise RuntimeError(f"litepose {args.verb} gave no summary for --json (a bug: please report it)")
    return _finish(as_json, stdout, summary, None, code)


def _finish(as_json: bool, stdout: Any, summary: dict[str, Any] | None, error: str | None, code: int) -> int:
    """Print the error line (stderr) and, under ``--json``, the one JSON object (stdout); return ``code``."""
    if error is not None:
        print(error, file=sys.stderr)
    if as_json:
        obj = summary if error is None else {"error": error.splitlines()[-1], "exit_code": code}
        print(json.dumps(obj, indent=1, default=str), file=stdout)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
