"""``litepose val``: COCO / CrowdPose keypoint metrics of a model, saved results, or the ground truth."""

from __future__ import annotations

import argparse

HELP = "evaluate keypoint AP/AR (COCO or CrowdPose protocol) of a model, saved results, or the ground truth"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data", required=True,
        help="COCO-format keypoint JSON, or a SynthPose folder (annotations.json + images/)",
    )  # fmt: skip
    p.add_argument("--images", default=None, help="image folder (default: found beside the JSON)")
    p.add_argument(
        "--protocol", choices=("coco", "crowdpose"), default=None,
        help="metric protocol (default: crowdpose for 14 joints, coco otherwise)",
    )  # fmt: skip
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--weights", default=None, help="checkpoint to run on every image (a file or a name from 'litepose weights')"
    )
    what.add_argument("--results", default=None, help="saved COCO results JSON to score")
    what.add_argument(
        "--gt-as-results", action="store_true",
        help="score the ground truth itself (self-check: AP must be 1.000)",
    )  # fmt: skip
    p.add_argument("--output", default=None, help="folder for results.json (after inference) and metrics.json")
    p.add_argument("--no-flip", action="store_true", help="no flip test (faster, a little less accurate)")
    p.add_argument("--input-size", type=int, default=None, help="model input size (short side; default: the model's)")
    p.add_argument("--device", default=None, help="torch device for inference (default: cuda if available, else cpu)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    import json

    from ..eval import evaluate, format_metrics, gt_as_results, load_eval_data

    ann = load_eval_data(args.data, args.images)
    if args.gt_as_results:
        source = gt_as_results(ann)
    elif args.results:
        source = args.results
    else:
        import torch

        from ..predictor import Predictor

        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        source = Predictor(args.weights, input_size=args.input_size, flip_test=not args.no_flip, device=device)
    metrics = evaluate(source, ann, args.protocol, output=args.output)
    print(json.dumps(metrics, indent=1) if args.json else format_metrics(metrics))
    if args.output:
        print(f"metrics written to {args.output}/metrics.json")
    return 0
