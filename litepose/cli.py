"""The ``litepose`` command line: one entry point, a few verbs, one option style.

Each verb lives in ``litepose/commands/<verb>.py`` and defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Options that several verbs take come from
:mod:`litepose.commands._options`, so they mean the same everywhere (docs/cli.md lists which
verb takes which). Command modules keep heavy imports inside ``run`` so that ``litepose --help``
stays fast.

Expected errors are one line on stderr and exit code 2: a bad value or file (``ValueError``, which
``CheckpointError``, ``KeypointSetError`` and ``MediaError`` are), what the system refuses
(``OSError``: a missing file, no permission, a full disk), running out of memory, and a diverging
training run (``FloatingPointError``). A message of several lines is folded into one
(:mod:`litepose.errors`). Ctrl-C and SIGTERM stop every verb cleanly (:mod:`litepose.interrupt`): exit
code 130 / 143. Anything else is a bug in litepose:
its traceback, a line asking to report it, and exit code 1. With ``--json`` stdout holds exactly
one JSON object: the command's summary, or ``{"error": ..., "exit_code": ...}``; everything else
the command prints goes to stderr. Warnings are one line each, ``warning: ...``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
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
    """Run one command line; ``argv`` None: the process's own (the ``litepose`` program), whose
    signals stay handled until it exits, so a signal during shutdown cannot turn the exit code
    into a death by that signal. Called with ``argv`` (tests, scripts) the handlers are put back."""
    entry = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        return _finish("--json" in argv, sys.stdout, None, str(e), 2)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    from . import interrupt

    as_json = bool(getattr(args, "json", False))
    stdout = sys.stdout
    redirect = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    restore_signals = interrupt.handle_signals()
    try:
        with redirect, _plain_warnings():
            from .commands._options import apply_threads

            apply_threads(args)
            code = int(args._run(args) or 0)
    except KeyboardInterrupt as e:  # SIGINT or SIGTERM (litepose.interrupt): 130 / 143
        summary = getattr(args, "_summary", None)
        return _finish(as_json, stdout, summary, f"litepose {args.verb}: stopped by {_signal_name(e)}",
                       interrupt.exit_code(e))  # fmt: skip
    except Exception as e:
        if _expected(e):  # one clear line, no traceback
            return _finish(as_json, stdout, None, f"litepose {args.verb}: error: {_message(e)}", 2, _full(e))
        traceback.print_exc(file=sys.stderr)
        return _finish(as_json, stdout, None, _bug(args.verb, f"{type(e).__name__}: {_message(e)}"), 1)
    finally:
        if entry:  # the process ends next: later signals change nothing (the exit code stands)
            interrupt.closing()
        else:
            restore_signals()
    summary = getattr(args, "_summary", None)
    if as_json and summary is None:
        return _finish(as_json, stdout, None, _bug(args.verb, "no summary for --json"), 1)
    return _finish(as_json, stdout, summary, None, code)


def _signal_name(e: BaseException) -> str:
    from .interrupt import stopped_by

    signum = getattr(e, "signum", None)
    return signal.Signals(signum).name if signum else stopped_by()


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
    """The error as one line that keeps its meaning (:func:`litepose.errors.describe`)."""
    from .errors import describe

    text = describe(e)
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return f"out of memory{': ' + text if text and text != type(e).__name__ else ''}"
    return text


def _full(e: BaseException) -> str:
    """The whole message, every line of it (the ``"error"`` of ``--json``)."""
    from .errors import describe

    text = str(e).strip()
    return text if text and not isinstance(e, OSError) else describe(e)


@contextlib.contextmanager
def _plain_warnings() -> Iterator[None]:
    """Warnings as one line each, ``warning: ...``, like the command line's other messages."""
    old = warnings.formatwarning
    warnings.formatwarning = lambda message, *args, **kwargs: f"warning: {message}\n"
    try:
        yield
    finally:
        warnings.formatwarning = old


def _finish(
    as_json: bool, stdout: Any, summary: dict[str, Any] | None, error: str | None, code: int, full: str | None = None
) -> int:
    """Print the error line (stderr) and, under ``--json``, the one JSON object (stdout): the summary,
    with ``"stopped"`` when a signal ended the run, or ``{"error": the whole message, "exit_code"}``;
    return ``code``."""
    if error is not None:
        print(error, file=sys.stderr)
    if as_json:
        if summary is not None:
            obj = dict(summary, stopped=error) if error is not None else summary
        else:
            whole = error if full is None else error.split(": error: ", 1)[0] + ": error: " + full
            obj = {"error": whole, "exit_code": code}
        print(json.dumps(obj, indent=1, default=str), file=stdout)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
