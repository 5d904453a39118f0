"""``litepose train``: train LitePose (or its supernet) from a YAML config."""

from __future__ import annotations

import argparse

HELP = "train a model from a YAML config (single process, or DDP under torchrun)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="YAML config (see configs/)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.epochs=1")
    p.add_argument("--output", default=None, help="run folder (default: runs/<config name>)")
    p.add_argument("--resume", default="auto", help="'auto' (continue OUTPUT/last.pth if present), 'no', or a path")
    p.add_argument("--arch", default=None, help="supernet configs: train this fixed subnet (preset or JSON)")
    p.add_argument(
        "--teacher", default=None,
        help="checkpoint (file or weights name) of a larger model: adds heatmap distillation",
    )  # fmt: skip
    p.add_argument(
        "--pretrained", default=None,
        help="fine-tune: load the backbone of this checkpoint (file or weights name), skip the head",
    )  # fmt: skip
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: the config's, 'auto')")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..engine.config import TrainConfig
    from ..engine.distributed import cleanup
    from ..engine.trainer import Trainer

    cfg = TrainConfig.load(args.config, args.overrides)
    if args.arch:
        cfg.supernet.arch = args.arch
    if args.teacher:
        cfg.loss.teacher = args.teacher
    if args.pretrained:
        cfg.model.pretrained = args.pretrained
    if args.device:
        cfg.train.device = args.device
    out = Path(args.output) if args.output else Path("runs") / Path(args.config).stem
    resume = None if args.resume in ("no", "none", "false") else args.resume
    trainer = Trainer(cfg, out, resume=resume)
    try:
        summary = trainer.fit()
    finally:
        cleanup()
    if trainer.main:
        ap = summary["best_ap"]
        print(
            f"done: {summary['epochs']} epochs, {summary['steps']} steps"
            + (f", best AP {ap:.3f}" if ap is not None else "")
            + f" -> {out}/best.pth, {out}/last.pth, {out}/metrics.jsonl, {out}/curves.png"
        )
    return 0
