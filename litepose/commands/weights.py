"""``litepose weights``: the named pretrained weights, and fetching them ahead of time.

``litepose weights [list] [--json]`` lists every name of the registry (built in, plus
``$LITEPOSE_WEIGHTS_REGISTRY``) with its dataset, the AP its publisher reported and where, its
licence and whether it is cached (``yes`` only when every file is there with the right sha256);
``litepose weights download NAME ...`` downloads and verifies. Registry text is printed with its
control characters escaped (a registry cannot drive the terminal). ``litepose weights exports``
lists the export cache (checkpoints ``--backend auto`` exported once for a runtime,
:mod:`litepose.export.cache`), ``litepose weights clean-exports`` empties it (always safe: the next
run exports again).
"""

from __future__ import annotations

import argparse
import unicodedata

HELP = (
    "list the named pretrained weights (dataset, reported AP, licence, cached) or download them; "
    "list or empty the export cache"
)
ACTIONS = ("list", "download", "exports", "clean-exports")

#: How the table shows each cache state (litepose.models.weights.cache_state).
CACHED = {"verified": "yes", "absent": "no", "partial": "partly", "mismatch": "no (sha256 differs)"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=ACTIONS, default="list", help="default: list")
    from . import _options as o

    p.add_argument("names", nargs="*", metavar="NAME", help="weights to download (download only)")
    o.add_json_option(p)


def printable(text: object) -> str:
    """``text`` with every control character (C0, DEL, C1: ANSI escapes included) written as its
    ``\\x..`` escape, so that it prints as it is and cannot drive the terminal."""
    s = str(text)
    return "".join(c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) == "Cc" else c for c in s)


def _table(rows: list[dict], cache: str) -> str:
    head = ("name", "dataset", "input", "reported AP", "source of AP and file", "licence", "cached")
    body = [
        tuple(
            printable(x)
            for x in (
                r["name"],
                r["dataset"] or "-",
                str(r["input_size"] or "-"),
                "-" if r["ap"] is None else f"{r['ap']:.1f}",
                r["source"] or "-",
                r["license"] or "-",
                CACHED[r["cache_state"]],
            )
        )
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip() for row in (head, *body)]
    lines.append("AP as its source reported it, not measured by litepose (see docs/models.md)")
    lines.append(f"cache: {printable(cache)}  (fetch ahead of time: litepose weights download NAME)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..models.weights import WeightsError, download_weights, find_weights, list_weights, weights_dir
    from ._options import emit

    if args.action in ("exports", "clean-exports"):
        return _exports(args)
    if args.action == "list":
        if args.names:
            raise ValueError("'litepose weights list' takes no names (did you mean 'download'?)")
        rows = list_weights()
        emit(args, {"weights": rows}, _table(rows, str(weights_dir())))
        return 0
    if not args.names:
        raise ValueError("give the NAME(s) to download (see 'litepose weights')")
    done = []
    for name in args.names:
        entry = find_weights(name)
        if entry is None:
            raise WeightsError(f"unknown weights name {name!r} (see 'litepose weights')")
        path = download_weights(entry, progress=not args.json)
        done.append(dict(entry.to_dict(), cached=True, cache_state="verified", path=str(path)))
    emit(args, {"weights": done}, "\n".join(f"{printable(d['name'])}: {printable(d['path'])}" for d in done))
    return 0


def _exports(args: argparse.Namespace) -> int:
    """``exports``: the export cache's entries; ``clean-exports``: delete them."""
    from ..export import cache
    from ._options import emit

    if args.names:
        raise ValueError(f"'litepose weights {args.action}' takes no names")
    if args.action == "clean-exports":
        gone = cache.clear()
        emit(args, {"removed": gone, "folder": str(cache.cache_dir())}, f"removed {gone} cached exports")
        return 0
    rows = cache.entries()
    lines = [
        f"{r['format']:<12} {r['precision']:<5} {r['bytes'] / 1e6:7.1f} MB  {printable(r.get('checkpoint', '?'))}"
        for r in rows
    ]
    total = sum(r["bytes"] for r in rows) / 1e6
    lines.append(f"{len(rows)} cached exports, {total:.1f} MB in {printable(cache.cache_dir())} "
                 "(litepose weights clean-exports empties it)")  # fmt: skip
    emit(args, {"exports": rows, "folder": str(cache.cache_dir())}, "\n".join(lines))
    return 0
