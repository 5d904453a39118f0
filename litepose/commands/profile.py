"""``litepose profile``: params and MACs per model, in true and paper conventions."""

from __future__ import annotations

import argparse

HELP = "print params and MACs of models (true multiply-adds and the paper's convention)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from . import _options as o

    p.add_argument(
        "models", nargs="*", metavar="MODEL",
        help="preset names (litepose-xs/-s/-m/-l) or architecture JSON files (default: all presets)",
    )  # fmt: skip
    p.add_argument("--num-joints", type=int, default=17, help="number of joints (17 COCO, 14 CrowdPose)")
    o.add_input_size(p)
    o.add_json_option(p)


def run(args: argparse.Namespace) -> int:
    from ..models.profile import profile_model
    from ..models.spec import PRESETS
    from ._options import emit

    names = args.models or list(PRESETS)
    rows = [profile_model(n, args.num_joints, args.input_size) for n in names]
    summary = {"models": [dict(r.as_dict(), model=n) for n, r in zip(names, rows)], "num_joints": args.num_joints}
    emit(args, summary, _table(names, rows, args.num_joints))
    return 0


def _table(names: list[str], rows: list, num_joints: int) -> str:
    """The terminal table: one row per model."""
    head = f"{'model':<28} {'input':>9} {'params (M)':>11} {'MACs (G)':>9} {'paper MACs (G)':>15} {'deconv (G)':>11}"
    lines = [head]
    for n, r in zip(names, rows):
        size = f"{r.input_size[0]}x{r.input_size[1]}"
        lines.append(
            f"{n:<28} {size:>9} {r.params / 1e6:>11.2f} {r.macs / 1e9:>9.3f} "
            f"{r.macs_paper / 1e9:>15.3f} {r.deconv_macs / 1e9:>11.3f}"
        )
    lines.append(f"({num_joints} joints; 'paper' = ptflops 0.6.x convention, see docs/models.md)")
    return "\n".join(lines)
