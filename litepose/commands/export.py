"""``litepose export``: a checkpoint as an ONNX, OpenVINO or TorchScript file for the CPU runtimes.

BatchNorm is folded, the graph takes the normalised input (N, 3, H, W) (dynamic sizes unless
``--static``) and returns the network's two raw maps; the file records joints, keypoint set,
input size and normalisation, so ``litepose predict SOURCE --weights FILE`` needs nothing else
(and no torch for ONNX / OpenVINO). ``--int8`` quantises on calibration images; ``--eval DATA``
then scores fp32 against int8 and prints the AP the quantisation costs.
"""

from __future__ import annotations

import argparse

HELP = "export a checkpoint to ONNX, OpenVINO or TorchScript (BatchNorm folded; optionally int8)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..formats import FORMATS
    from . import _options as o

    o.add_model_options(p)
    p.add_argument("--format", choices=tuple(FORMATS), default="onnx", help="file format (default onnx)")
    p.add_argument(
        "--static", action="store_true",
        help="fix the input to N x N (N = --input-size); default: dynamic batch, height and width",
    )  # fmt: skip
    o.add_option(p, "--precision")  # int8: static quantisation on calibration images; bf16 is no file
    p.add_argument(
        "--int8", action="store_true",
        help="the same as --precision int8: static quantisation on calibration images (onnx: ONNX Runtime QDQ; "
        "openvino: NNCF, the 'openvino' extra; ncnn, executorch: their own)",
    )  # fmt: skip
    p.add_argument(
        "--calib", metavar="DIR", default=None,
        help="--int8 calibration images, a folder (default: generated SynthPose images)",
    )  # fmt: skip
    o.add_option(p, "--int8-images")
    p.add_argument(
        "--eval", metavar="DATA", default=None,
        help="with --int8: score fp32 and int8 on DATA (COCO-format JSON or SynthPose folder) and print the AP cost",
    )  # fmt: skip
    o.add_output_option(p, "file", "the exported network", default_text="<weights stem>[-int8].<format ext>, here")
    o.add_json_option(p)


def run(args: argparse.Namespace) -> int:
    import sys
    import tempfile
    from pathlib import Path

    from ..export import default_output, export_model
    from ..files import refuse_clashes
    from ..models import load_checkpoint
    from ._options import emit

    if not args.weights:
        raise ValueError("give --weights W: the checkpoint to export")
    if args.precision == "bf16":
        raise ValueError("--precision bf16 is no file format: export fp32, then run it with --precision bf16")
    args.int8 = args.int8 or args.precision == "int8"
    if args.eval and not args.int8:
        raise ValueError("--eval compares fp32 with int8: give --int8 too")
    if args.int8_images < 1:
        raise ValueError(f"--int8-images must be at least 1, got {args.int8_images}")
    out = Path(args.output) if args.output else default_output(args.weights, args.format, args.int8)
    written = [out, out.with_suffix(".bin")] if args.format == "openvino" else [out]
    refuse_clashes(written, [Path(f) for f in (args.weights, args.calib) if f and Path(f).exists()], "--output")
    model, _info = load_checkpoint(args.weights, arch=args.model)
    kw = {"input_size": args.input_size, "static": args.static}
    path = export_model(model, args.format, out, int8=args.int8, calib=args.calib, int8_images=args.int8_images, **kw)
    summary = {"output": str(path), "format": args.format, "precision": "int8" if args.int8 else "fp32",
               "static": args.static, "input_size": args.input_size or model.input_size}  # fmt: skip
    text = f"{args.weights} -> {path} ({args.format}, {summary['precision']}{', static' if args.static else ''})"
    if args.eval:
        from ..eval import evaluate
        from ..predictor import Predictor

        with tempfile.TemporaryDirectory(prefix="litepose-") as tmp:
            fp32 = export_model(model, args.format, Path(tmp) / f"fp32{path.suffix}", **kw)
            scores = {}
            for name, f in (("fp32", fp32), ("int8", path)):
                print(f"scoring {name} on {args.eval}", file=sys.stderr)
                m = evaluate(Predictor(f, input_size=args.input_size), args.eval)
                scores[name] = {k: m[k] for k in ("AP", "AP50", "AR") if k in m}
        cost = scores["fp32"]["AP"] - scores["int8"]["AP"]
        summary["eval"] = {"data": args.eval, **scores, "ap_cost": cost}
        text += (
            f"\nAP on {args.eval}: fp32 {scores['fp32']['AP']:.3f}, int8 {scores['int8']['AP']:.3f} "
            f"(int8 - fp32: {-cost:+.3f} AP)"
        )
    emit(args, summary, text)
    return 0
