"""``litepose demo``: the whole pipeline on built-in data, on this machine's CPU.

Generates a SynthPose train / val split, trains LitePose-XS from scratch for a wall-clock
budget, evaluates the best checkpoint on val (COCO keypoint AP), and writes skeleton overlays
of val predictions, the training curves and a metrics summary into the output folder.
"""

from __future__ import annotations

import argparse
from typing import Any

HELP = "generate SynthPose, train LitePose-XS on the CPU, evaluate, and draw the results"

# (train images, val images, minutes of training, input size, epochs cap, val every N epochs)
PROFILES = {
    "quick": (120, 24, 1.0, 128, 200, 2),
    "default": (1000, 100, 10.0, 128, 400, 3),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from . import _options as o

    p.add_argument("--quick", action="store_true", help="about one minute instead of about ten")
    p.add_argument("--minutes", type=float, default=None, help="training budget in minutes (overrides the profile)")
    p.add_argument("--train-images", type=int, default=None, help="SynthPose training images")
    o.add_option(p, "--val-images")
    o.add_option(p, "--seed")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="data-loading worker processes (default: 0 on a CPU with up to 2 cores, else 2)",
    )
    o.add_input_size(p)
    o.add_device_options(p)
    o.add_output_option(p, "folder", "data, the training run, overlays, metrics and report.json", "runs/demo")
    o.add_json_option(p)


def _check_counts(minutes: float, n_train: int, n_val: int, workers: int | None) -> None:
    """The demo's numbers, checked before it generates anything."""
    import math

    if not (math.isfinite(minutes) and minutes > 0):
        raise ValueError(f"--minutes must be a positive number of minutes, got {minutes:g}")
    for flag, n in (("--train-images", n_train), ("--val-images", n_val)):
        if n < 1:
            raise ValueError(f"{flag} must be at least 1, got {n}")
    if workers is not None and workers < 0:
        raise ValueError(f"--workers must be 0 (load in the training process) or more, got {workers}")


def run(args: argparse.Namespace) -> int:
    from ..files import FolderLock
    from ..models.spec import check_input_size
    from ._options import output_folder

    n_train, n_val, minutes, size, epochs, every = PROFILES["quick" if args.quick else "default"]
    n_train = args.train_images if args.train_images is not None else n_train
    n_val = args.val_images if args.val_images is not None else n_val
    minutes = args.minutes if args.minutes is not None else minutes
    _check_counts(minutes, n_train, n_val, args.workers)  # before any image is generated
    size = check_input_size(args.input_size if args.input_size is not None else size, "--input-size")
    out = output_folder(args.output, make=False)
    with FolderLock(out, "litepose demo"):
        return _demo(args, out, (n_train, n_val, minutes, size, epochs, every))


def _demo(args: argparse.Namespace, out: Any, profile: tuple) -> int:
    """The demo's four steps, in its (locked) output folder."""
    import shutil
    import time

    from ..data.jsonio import write_json
    from ..data.synth import make_synthpose, synthpose_current
    from ..device import pick_device
    from ..engine.config import SYNTHPOSE_RECIPE, TrainConfig
    from ..engine.trainer import Trainer
    from ._options import emit

    n_train, n_val, minutes, size, epochs, every = profile
    t0 = time.time()
    data = out / "data"
    splits = {}
    regenerated = False
    for split, n, seed in (("train", n_train, 0), ("val", n_val, 1)):
        folder = data / split
        if not synthpose_current(folder, n):
            print(f"[1/4] SynthPose {split}: {n} images (seed {seed}) -> {folder}")
            if folder.exists():
                shutil.rmtree(folder)  # the demo's own data: another size or an older SynthPose version
            make_synthpose(folder, n, seed=seed)
            regenerated = True
        splits[split] = folder
    run_dir = out / "train"
    if regenerated and run_dir.exists():
        print(f"      new data: the earlier run in {run_dir} is removed, training starts afresh")
        shutil.rmtree(run_dir)
    print(f"[2/4] training LitePose-XS at {size}px for up to {minutes:g} min")
    sections = {
        "model": {"input_size": size},
        "data": {"train": str(splits["train"]), "val": str(splits["val"]), "workers": args.workers, "cache_mb": 1024},
        "train": {"epochs": epochs, "time_limit_min": minutes, "seed": args.seed, "device": args.device},
        "val": {"every": every},
    }
    recipe = {k: {**SYNTHPOSE_RECIPE.get(k, {}), **v} for k, v in {**SYNTHPOSE_RECIPE, **sections}.items()}
    cfg = TrainConfig.from_dict(recipe)
    summary = Trainer(cfg, run_dir, resume="auto").fit()

    print("[3/4] evaluating best.pth on SynthPose val")
    from ..eval import evaluate
    from ..models import load_checkpoint
    from ..predictor import Predictor

    model, info = load_checkpoint(run_dir / "best.pth")
    predictor = Predictor(model, input_size=size, flip_test=True, device=str(pick_device(cfg.train.device)))
    metrics = evaluate(predictor, splits["val"], output=out, progress=True)

    print("[4/4] drawing val predictions")
    overlays = _draw_overlays(predictor, splits["val"], out / "overlays", count=8)
    report = {
        "train_images": n_train,
        "val_images": n_val,
        "input_size": size,
        "epochs": summary["epochs"],
        "steps": summary["steps"],
        "train_minutes_budget": minutes,
        "AP": metrics.get("AP"),
        "AP50": metrics.get("AP50"),
        "AR": metrics.get("AR"),
        "best_val_ap_during_training": summary["best_ap"],
        "total_minutes": round((time.time() - t0) / 60, 2),
        "files": {
            "model": str(run_dir / "best.pth"),
            "metrics": str(out / "metrics.json"),
            "curves": str(run_dir / "curves.png"),
            "overlays": [str(p) for p in overlays],
        },
    }
    write_json(out / "report.json", report, indent=1)
    emit(
        args,
        report,
        f"\nSynthPose val: AP {report['AP']:.3f}  AP50 {report['AP50']:.3f}  AR {report['AR']:.3f}  "
        f"({report['epochs']} epochs, {report['steps']} steps, {report['total_minutes']:.1f} min in all)\n"
        f"report {out / 'report.json'}, curves {run_dir / 'curves.png'}, overlays {out / 'overlays'}/",
    )
    return 0


def _draw_overlays(predictor, folder, out, count: int = 8) -> list:
    from pathlib import Path

    from ..data.jsonio import read_json
    from ..media import MediaError, read_image, write_image
    from ..viz import draw_people
    from ._options import MIN_SCORE

    out.mkdir(parents=True, exist_ok=True)
    data = read_json(folder / "annotations.json", "annotation file")
    written = []
    for img in data["images"][:count]:
        path = folder / "images" / img["file_name"]
        try:
            rgb = read_image(path, frame="stored")  # the frame of the annotations
        except (MediaError, OSError):
            continue
        people = predictor(rgb)
        drawn = draw_people(rgb, people, predictor.keypoints, min_score=MIN_SCORE)
        dst = out / f"{Path(img['file_name']).stem}.jpg"
        write_image(dst, drawn)
        written.append(dst)
    return written
