"""The ``litepose`` command line: one entry point, a few verbs, one option style.

Each verb lives in ``litepose/commands/<verb>.py`` and defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Command modules keep heavy imports
inside ``run`` so that ``litepose --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from . import __version__

# Verb -> module. Verbs whose module is absent are simply not offered.
VERBS = ("predict", "val", "train", "demo", "synth", "transfer", "profile", "weights", "export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="litepose",
        description="LitePose: real-time multi-person 2D pose estimation.",
    )
    parser.add_argument("--version", action="version", version=f"litepose {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb in VERBS:
        name = f"litepose.commands.{verb}"
        if importlib.util.find_spec(name) is None:
            continue
        mod = importlib.import_module(name)
        p = sub.add_parser(verb, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError) as e:
        # User errors: one clear line, no traceback.
        print(f"litepose {args.verb}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
