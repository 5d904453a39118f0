"""``litepose profile``: params and MACs per model, in true and paper conventions."""

from __future__ import annotations

import argparse
import json

HELP = "print params and MACs of models (true multiply-adds and the paper's convention)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "models", nargs="*", metavar="MODEL",
        help="preset names (litepose-xs/-s/-m/-l) or architecture JSON files (default: all presets)",
    )  # fmt: skip
    p.add_argument("--input-size", type=int, default=None, help="square input side (default: each model's own)")
    p.add_argument("--num-joints", type=int, default=17, help="number of joints (17 COCO, 14 CrowdPose)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from ..models.profile import profile_model
    from ..models.spec import PRESETS

    names = args.models or list(PRESETS)
    rows = [profile_model(n, args.num_joints, args.input_size) for n in names]
    if args.json:
        print(json.dumps([dict(r.as_dict(), model=n) for n, r in zip(names, rows)], indent=1))
        return 0
    print(f"{'model':<28} {'input':>9} {'params (M)':>11} {'MACs (G)':>9} {'paper MACs (G)':>15} {'deconv (G)':>11}")
    for n, r in zip(names, rows):
        size = f"{r.input_size[0]}x{r.input_size[1]}"
        print(
            f"{n:<28} {size:>9} {r.params / 1e6:>11.2f} {r.macs / 1e9:>9.3f} "
            f"{r.macs_paper / 1e9:>15.3f} {r.deconv_macs / 1e9:>11.3f}"
        )
    print(f"({args.num_joints} joints; 'paper' = ptflops 0.6.x convention, see docs/models.md)")
    return 0
