"""``litepose val``: COCO / CrowdPose keypoint metrics of a model, saved results, or the ground truth.

A model (``--weights``, or ``--model`` for random weights) runs with every inference option that
``litepose predict`` takes, so published numbers can be reproduced from the command line
(``--legacy`` decodes as the original did).
"""

from __future__ import annotations

import argparse

HELP = "evaluate keypoint AP/AR (COCO or CrowdPose protocol) of a model, saved results, or the ground truth"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from . import _options as o

    o.add_data_options(p, "the ground truth", required=True)
    p.add_argument(
        "--protocol", choices=("coco", "crowdpose"), default=None,
        help="metric protocol (default: crowdpose for 14 joints, coco otherwise)",
    )  # fmt: skip
    p.add_argument("--results", default=None, help="instead of a model: saved COCO results JSON to score")
    p.add_argument(
        "--gt-as-results", action="store_true",
        help="instead of a model: score the ground truth itself (self-check: AP must be 1.000)",
    )  # fmt: skip
    o.add_model_options(p)
    o.add_inference_options(p)
    o.add_device_options(p)
    o.add_output_option(p, "folder", "results.json (after inference) and metrics.json")
    o.add_json_option(p)


def run(args: argparse.Namespace) -> int:
    from ..eval import evaluate, format_metrics, gt_as_results, load_eval_data
    from ._options import build_predictor, emit, output_folder

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
        output_folder(args.output, make=False)
    ann = load_eval_data(args.data, args.images)
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
