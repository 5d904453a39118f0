"""``litepose val``: COCO / CrowdPose keypoint metrics of a model, saved results, or the ground truth.

A model (``--weights``, or ``--model`` for random weights) runs with every inference option that
``litepose predict`` takes, so published numbers can be reproduced from the command line
(``--legacy`` decodes as the original did).

``--track`` scores tracking instead, on clips with ground-truth identities (``litepose synth
--sequence``): MOTA, IDF1 and identity switches from motmetrics with OKS as the similarity,
jitter and lag, each without and with smoothing (docs/tracking.md). The people come from a model,
from ``--results FRAMES.jsonl`` (per-frame JSON lines as ``litepose predict`` writes them, each
with ``file_name`` or ``image_id``; people that carry ``track_id`` are scored as given), or from
the ground truth itself (``--gt-as-results``, with ``--perturb`` its seeded perturbation).
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

HELP = "evaluate keypoint AP/AR (COCO or CrowdPose protocol) of a model, saved results, or the ground truth"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from . import _options as o

    o.add_data_options(p, "the ground truth", required=True)
    p.add_argument(
        "--protocol", choices=("coco", "crowdpose"), default=None,
        help="metric protocol (default: crowdpose for 14 joints, coco otherwise)",
    )  # fmt: skip
    p.add_argument(
        "--results", default=None,
        help="instead of a model: saved COCO results JSON to score (with --track: per-frame JSON lines)",
    )  # fmt: skip
    p.add_argument(
        "--gt-as-results", action="store_true",
        help="instead of a model: score the ground truth itself (self-check: AP must be 1.000)",
    )  # fmt: skip
    p.add_argument(
        "--perturb", action="store_true",
        help="with --track --gt-as-results: perturb the ground truth per frame (joint noise 0.05 sqrt(area) px, "
        "10%% of joints dropped, 5%% of people missed, 0.2 false people per frame; seeded by --seed)",
    )  # fmt: skip
    o.add_option(p, "--seed")
    o.add_model_options(p)
    o.add_inference_options(p)
    o.add_tracking_options(p)
    o.add_device_options(p)
    o.add_output_option(p, "folder", "results.json (after inference) and metrics.json")
    o.add_json_option(p)


def run(args: argparse.Namespace) -> int:
    from ..eval import load_eval_data
    from ..files import FolderLock

    given = [
        name
        for name, on in (
            ("--weights/--model", bool(args.weights or args.model)),
            ("--results", bool(args.results)),
            ("--gt-as-results", args.gt_as_results),
        )
        if on
    ]
    if len(given) != 1:
        what = "several: " + ", ".join(given) if given else "none"
        raise ValueError(f"give one of --weights W (or --model NAME), --results R.json, --gt-as-results ({what} given)")
    if args.output:
        _check_output(args)
    if args.perturb and not (args.track and args.gt_as_results):
        raise ValueError("--perturb perturbs the ground truth for tracking: give --track --gt-as-results")
    if args.smooth and not args.track:
        raise ValueError("--smooth belongs to --track (which reports both, without and with smoothing)")
    ann = load_eval_data(args.data, args.images)
    with FolderLock(args.output, "litepose val") if args.output else contextlib.nullcontext():
        return _track(args, ann) if args.track else _score(args, ann)


def _check_output(args: argparse.Namespace) -> None:
    """--output: a folder whose files (results.json, metrics.json, tracking.json) are none of the inputs."""
    from ..files import refuse_clashes
    from ._options import output_folder

    out = output_folder(args.output, make=False)
    inputs = [Path(f) for f in (args.data, args.results, args.weights) if f]
    refuse_clashes([out / n for n in ("results.json", "metrics.json", "tracking.json")], inputs, "--output")


def _score(args: argparse.Namespace, ann: Any) -> int:
    """COCO / CrowdPose metrics of a model, saved results or the ground truth."""
    from ..eval import evaluate, format_metrics, gt_as_results
    from ._options import build_predictor, emit

    if args.gt_as_results:
        source = gt_as_results(ann)
    elif args.results:
        source = args.results
    else:
        source = build_predictor(args)
    metrics = evaluate(source, ann, args.protocol, output=args.output)
    text = format_metrics(metrics)
    if args.output:
        metrics["metrics_file"] = f"{args.output}/metrics.json"
        text += f"\nmetrics written to {args.output}/metrics.json"
    emit(args, metrics, text)
    return 0


def _track(args: argparse.Namespace, ann: object) -> int:
    """``val --track``: tracking metrics on the clips of ``ann`` (module docstring)."""
    from ..data.jsonio import write_json
    from ..track import OneEuroConfig, TrackerConfig
    from ..track import evaluate as te
    from ._options import build_predictor, emit, library_settings, output_folder

    config = TrackerConfig(**library_settings(args, "tracker"))
    smoothing = OneEuroConfig(**library_settings(args, "smoother"))
    clips = te.load_clips(ann)
    source = "ground truth"
    given = None
    if args.gt_as_results:
        detections = te.perturbed_detections(clips, args.seed) if args.perturb else te.gt_detections(clips)
        source += f" perturbed (seed {args.seed})" if args.perturb else ""
    elif args.results:
        detections, tracked = te.read_frames_jsonl(args.results, ann, clips)
        source = str(args.results)
        given = detections if tracked else None
    else:
        detections = te.predict_clips(build_predictor(args), ann, clips)
        source = str(args.weights or args.model)
    if given is not None:
        metrics = {"given": te.tracking_metrics(clips, given, ann.keypoints, kpt_threshold=config.kpt_threshold)}
    else:
        metrics = te.evaluate_tracking(clips, detections, ann.keypoints, config, smoothing)
    metrics.update(
        source=source, clips=len(clips), frames=sum(len(c) for c in clips), similarity="oks",
        oks_threshold=0.5, hota=None, hota_note=te.HOTA_NOTE,
    )  # fmt: skip
    text = f"tracking on {metrics['clips']} clips, {metrics['frames']} frames ({source})\n"
    text += te.format_tracking(metrics)
    if args.output:
        write_json(output_folder(args.output) / "tracking.json", metrics, indent=1)
        metrics["metrics_file"] = f"{args.output}/tracking.json"
        text += f"\nmetrics written to {args.output}/tracking.json"
    emit(args, metrics, text)
    return 0
