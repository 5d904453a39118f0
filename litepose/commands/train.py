"""``litepose train``: train LitePose (or its supernet) from a YAML config.

``--arch``, ``--teacher``, ``--pretrained`` and ``--device`` (unless it is the default, ``auto``) set
``supernet.arch``, ``loss.teacher``, ``model.pretrained`` and ``train.device``: applied, after the
``KEY=VALUE`` overrides, before the config is checked.
"""

from __future__ import annotations

import argparse

HELP = "train a model from a YAML config (single process, or DDP under torchrun)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from . import _options as o

    p.add_argument("--config", required=True, help="YAML config (see configs/)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.epochs=1")
    o.add_option(p, "--resume")
    o.add_option(p, "--arch")
    p.add_argument(
        "--teacher", default=None,
        help="checkpoint (file or weights name) of a larger model: adds heatmap distillation",
    )  # fmt: skip
    p.add_argument(
        "--pretrained", default=None,
        help="fine-tune: load the backbone of this checkpoint (file or weights name), skip the head "
        "(model.pretrained_head=true loads it too)",
    )  # fmt: skip
    o.add_device_options(p)
    o.add_output_option(
        p, "folder", "the run: checkpoints, metrics.jsonl, config.yaml, curves.png", default_text="runs/<config name>"
    )
    o.add_json_option(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..device import AUTO
    from ..engine.config import TrainConfig
    from ..engine.distributed import cleanup
    from ..engine.trainer import Trainer
    from ..files import refuse_clashes
    from ._options import emit, output_folder

    flags = {"supernet.arch": args.arch, "loss.teacher": args.teacher, "model.pretrained": args.pretrained}
    if args.device != AUTO:  # auto, the default, leaves the config's choice alone
        flags["train.device"] = args.device
    out = output_folder(args.output, make=False) if args.output else Path("runs") / Path(args.config).stem
    given = [Path(f) for f in (args.config, args.pretrained, args.teacher) if f and Path(f).is_file()]
    written = [out / n for n in ("config.yaml", "last.pth", "best.pth", "metrics.jsonl", "curves.png")]
    refuse_clashes(written, given, "--output")  # e.g. --config RUN/config.yaml --output RUN: written over
    # the options win over the KEY=VALUE overrides; the config is checked once, with them applied
    cfg = TrainConfig.load(args.config, args.overrides, {k: v for k, v in flags.items() if v})
    resume = None if args.resume in ("no", "none", "false") else args.resume
    trainer = Trainer(cfg, out, resume=resume)
    try:
        summary = trainer.fit()
    except KeyboardInterrupt:  # SIGINT / SIGTERM: the trainer saved last.pth and said so; exit 130 / 143
        if trainer.summary is not None:
            files = {name: str(out / name) for name in ("last.pth", "metrics.jsonl") if (out / name).is_file()}
            rank = {} if trainer.main else {"rank": trainer.dist.rank}
            emit(args, {**trainer.summary, "files": files, **rank}, None)
        raise
    finally:
        cleanup()
    if trainer.main:
        ap = summary["best_ap"]
        files = {name: str(out / name) for name in ("best.pth", "last.pth", "metrics.jsonl", "curves.png")}
        emit(
            args,
            {**summary, "files": files},
            f"done: {summary['epochs']} epochs, {summary['steps']} steps"
            + (f", best AP {ap:.3f}" if ap is not None else "")
            + f" -> {', '.join(files.values())}",
        )
    else:
        emit(args, {**summary, "rank": trainer.dist.rank}, None)  # torchrun: only rank 0 reports
    return 0
