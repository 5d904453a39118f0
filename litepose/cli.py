"""The ``litepose`` command line: one entry point, a few verbs, one option style.

Each verb lives in ``litepose/commands/<verb>.py`` and defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Options that several verbs take come from
:mod:`litepose.commands._options`, so they mean the same everywhere (docs/cli.md lists which
verb takes which). Command modules keep heavy imports inside ``run`` so that ``litepose --help``
stays fast.

Expected errors are one line on stderr and exit code 2: a bad value or file (``ValueError``, which
``CheckpointError``, ``KeypointSetError`` and ``MediaError`` are), what the system refuses
(``OSError``: a missing file, no permission, a full disk), running out of memory, and a diverging
training run (``FloatingPointError``). Ctrl-C is exit code 130. Anything else is a bug in litepose:
its traceback, a line asking to report it, and exit code 1. With ``--json`` stdout holds exactly
one JSON object: the command's summary, or ``{"error": ..., "exit_code": ...}``; everything else
the command prints goes to stderr. Warnings are one line each, ``warning: ...``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import traceback
import warnings
from collections.abc import Iterator
from typing import Any

from . import __version__

VERBS = (
    "predict", "val", "train", "demo", "synth", "transfer", "search", "profile", "weights", "export", "benchmark",
)


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
        with redirect, _plain_warnings():
            from .commands._options import apply_threads

            apply_threads(args)
            code = int(args._run(args) or 0)
    except KeyboardInterrupt:
        return _finish(as_json, stdout, None, "interrupted", 130)
    except Exception as e:
        if _expected(e):  # one clear line, no traceback
            return _finish(as_json, stdout, None, f"litepose {args.verb}: error: {_message(e)}", 2)
        traceback.print_exc(file=sys.stderr)
        return _finish(as_json, stdout, None, _bug(args.verb, f"{type(e).__name__}: {_message(e).splitlines()[0]}"), 1)
    summary = getattr(args, "_summary", None)
    if as_json and summary is None:
        return _finish(as_json, stdout, None, _bug(args.verb, "no summary for --json"), 1)
    return _finish(as_json, stdout, summary, None, code)


def _bug(verb: str, what: str) -> str:
    """The line that ends a run stopped by a bug in litepose."""
    return (
        f"litepose {verb}: internal error ({what}); this is a bug in litepose {__version__}: "
        "please report it with the command line and the traceback above"
    )


def _expected(e: BaseException) -> bool:
    """Errors of the input or the environment, not of litepose (see the module docstring)."""
    if isinstance(e, ValueError | OSError | MemoryError | FloatingPointError):
        return True
    return type(e).__name__ == "OutOfMemoryError"  # torch's (CUDA) out of memory, without importing torch


def _message(e: BaseException) -> str:
    text = str(e).strip()
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return f"out of memory{': ' + text.splitlines()[0] if text else ''}"
    return text or type(e).__name__


@contextlib.contextmanager
def _plain_warnings() -> Iterator[None]:
    """Warnings as one line each, ``warning: ...``, like the command line's other messages."""
    old = warnings.formatwarning
    warnings.formatwarning = lambda message, *args, **kwargs: f"warning: {message}\n"
    try:
        yield
    finally:
        warnings.formatwarning = old


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
