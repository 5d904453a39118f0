"""``litepose transfer``: a standalone subnet from a supernet, BatchNorm recalibrated."""

from __future__ import annotations

import argparse

HELP = "extract a subnet from a supernet checkpoint and recalibrate its BatchNorm statistics"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from . import _options as o

    o.add_option(p, "--supernet", required=True)
    o.add_option(p, "--arch", required=True)
    o.add_data_options(p, "training images to recalibrate BatchNorm on (default: none)", required=False)
    o.add_option(p, "--calib-images")
    p.add_argument("--batch-size", type=int, default=16)
    o.add_option(p, "--seed")
    o.add_device_options(p)
    o.add_output_option(p, "file", "the self-describing subnet checkpoint", required=True)
    o.add_json_option(p)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from ..engine.transfer import transfer
    from ..files import refuse_clashes
    from ._options import emit

    refuse_clashes([Path(args.output)], [Path(f) for f in (args.supernet, args.data) if f and Path(f).exists()],
                   "--output")  # fmt: skip
    if args.data is None:
        print(
            "warning: no --data given: BatchNorm statistics are the supernet's, which belong to no subnet "
            "(expect poor accuracy until recalibrated)",
            file=sys.stderr,
        )
    _, s = transfer(
        args.supernet,
        args.arch,
        args.output,
        data=args.data,
        images=args.images,
        num_images=512 if args.calib_images is None else args.calib_images,
        batch_size=args.batch_size,
        device=args.device,
        seed=args.seed,
    )
    emit(
        args,
        s,
        f"{s['arch']} (input {s['input_size']}) -> {s['output']}; "
        f"BatchNorm recalibrated on {s['recalibrated_on']} images",
    )
    return 0
