"""LitePose beside its peers: YOLO11n-pose and YOLO26n-pose next to LitePose XS, on the same
runtimes (ONNX Runtime and OpenVINO, fp32; ONNX Runtime int8; OpenVINO bf16 on a CPU with
AVX512-BF16 or AMX), the same threads and the same
real frame (../shared/ref/images/img_480x640.png), each with its published COCO keypoint AP.

Usage: python benchmarks/peers.py [--runs R] [--warmup W] [--threads N] [--peer-sizes 640,320]
       [--peer-shapes square,rect] [--litepose-sizes 256] [--runtimes onnxruntime,openvino]
       [--int8/--no-int8] [--peer-candidates N] [--threshold T] [--json OUT]

What is timed, per model, size, runtime and precision (every variant in one process, alternated
run after run, the order reversed every other run; medians with min-max):
- network: the exported network alone on its prepared input (one session run);
- whole frame: the frame in, people out.
  LitePose: ``litepose.Predictor`` (preprocess + network + decode, no flip test, the fast chain,
  backend onnxruntime / openvino, detection threshold ``--threshold``, 1.0 by default as in
  benchmarks/deploy.py: with the random weights of model_XS_17.pth, the fast chain and no flip
  test that finds 30 people on the frame, the max_people cap).
  Peer: ultralytics' own ``PosePredictor.preprocess`` (its letterbox, BGR->RGB, /255) and
  ``PosePredictor.postprocess`` (its NMS for YOLO11; the confidence filter of the NMS-free head of
  YOLO26; boxes and keypoints scaled back to the frame) around the same kind of session as the
  network column. YOLO11's NMS is ultralytics' pure-torch one (``TorchNMS``), the one it uses
  whenever torchvision is not imported.

The peers are built from their own configuration files without weights
(``YOLO("yolo11n-pose.yaml")``, ``YOLO("yolo26n-pose.yaml")``) with one class (person), as the
published COCO-pose models are (the yaml files default to 80 classes), and exported by ultralytics'
own exporter (``format="onnx"``; YOLO26 with ``nms=False``, its NMS-free end-to-end head, the way
it is published; YOLO11 with its default external NMS). For OpenVINO the peers are exported by
ultralytics' own OpenVINO export (``format="openvino"``, fp32 IR, converted from torch): OpenVINO
2026.4's ONNX reader refuses YOLO26's ONNX file (a GatherElements shape check in its end-to-end
head), so both peers take that path; LitePose's IR is its own export (converted from its ONNX
file). Every network runs in a session set up as litepose's backends set theirs up (ONNX Runtime:
all graph optimisations, ``--threads`` intra-op threads, one inter-op; OpenVINO: latency hint,
f32 inference precision, ``--threads`` inference threads). ``--peer-shapes``: ``square`` is
ultralytics' default export (a fixed size x size input, the frame letterboxed into it); ``rect`` a
dynamic export letterboxed to the smallest multiple of 32 around the frame (640x480 at 640), what
ultralytics' own predict does with a dynamic model. LitePose runs its own resize (short side to
the input size, long side rounded up to a multiple of 64: 256x384 for 640x480).

Random weights, so no accuracy here (the AP column quotes published figures). LitePose XS has the
random weights and BatchNorm statistics of model_XS_17.pth; the peers ultralytics' own random
initialisation (seed 0) with BatchNorm statistics taken from the frame (one pass in training
mode): without them the activations vanish through the fresh layers and every anchor of a level
gets the same score (the head's bias), which no trained network does. ``--peer-candidates N``
(default 120, about 4 per person for the 30 people LitePose finds on the frame) sets each
peer's confidence threshold just under its N-th highest score on the frame (each runtime's own
output), so that N candidates enter NMS / the filter, as in a crowded frame; 0 keeps
ultralytics' default (0.25: one or two detections with these weights). The detections column
says what came out.

int8 (``--int8``, on by default; ONNX Runtime only: OpenVINO int8 needs nncf, not a dependency
here): static QDQ quantisation of the Conv layers (uint8 activations, int8 per-channel weights,
min-max), calibrated on ``--int8-images`` generated SynthPose images and their mirrors. LitePose
through ``litepose.export.export_model(int8=True)`` (stem and output heads in fp32); the peers
with the same settings (after ONNX Runtime's quantisation pre-processing, without which the
unsimplified export's conv biases, fed through Identity nodes, are skipped), their first
convolution and their head's output convolutions in fp32 (the same policy). The peers' int8
accuracy is not checked.

ultralytics is a benchmark-only dependency, never litepose's. Install it without its
dependencies, as its own requirements would replace torch (it pulls torchvision and a newer
torch): ``pip install --no-deps ultralytics==8.4.190`` (what it needs to import and export is
already in litepose's dev environment: numpy, opencv, pyyaml, pillow, matplotlib, requests, onnx).
Without torchvision, ``import ultralytics`` fails only because it reads torchvision's version
from the package metadata at import time (``ultralytics/utils/__init__.py``); this script
therefore answers ``importlib.metadata.version("torchvision")`` with "0.0" while it imports
ultralytics, and only then (nothing in ultralytics is patched; the export and the predictor's
pre/post-processing used here never import torchvision). It also sets YOLO_OFFLINE=1,
YOLO_AUTOINSTALL=false and YOLO_VERBOSE=False (no network, no pip), and YOLO_CONFIG_DIR to a
temporary folder, unless already set.

Take the exclusive CPU lock (the defaults make 27 variants: exports and int8 calibration first,
then the runs; 8 minutes in all with --runs 2 on a loaded 2-core machine):
    flock /tmp/litepose-cpu.lock python benchmarks/peers.py --runs 20 --json peers.json
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.metadata
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import litepose
from litepose.formats import file_precision
from litepose.media import read_image

PEERS = ("yolo11n-pose", "yolo26n-pose")
#: Published COCO val2017 keypoint AP (model, input size) -> (AP, source).
AP = {
    ("litepose-xs", 256): ("40.6", "LitePose paper, as ../shared/ref/README.md quotes it"),
    ("yolo11n-pose", 640): ("50.0", "as reported in issue 25, not confirmed from the repo's docs"),
    ("yolo26n-pose", 640): ("57.2", "as reported in issue 25, not confirmed from the repo's docs"),
}
STAGES = ("preprocess", "network", "postprocess")


def _fail(msg: str) -> None:
    print(f"benchmarks/peers.py: {msg}", file=sys.stderr)
    raise SystemExit(2)


@contextlib.contextmanager
def _torchvision_version_stub() -> Iterator[None]:
    """While ultralytics imports: answer its metadata look-up of torchvision's version ("0.0")
    when torchvision is not installed (the only thing its import needs torchvision for)."""
    try:
        importlib.metadata.version("torchvision")
        yield
        return
    except importlib.metadata.PackageNotFoundError:
        pass
    real = importlib.metadata.version

    def version(name: str) -> str:
        return "0.0" if name.lower() == "torchvision" else real(name)

    importlib.metadata.version = version
    try:
        yield
    finally:
        importlib.metadata.version = real


def import_ultralytics() -> Any:
    """The ``ultralytics`` module, imported offline and quietly; a one-line exit when missing."""
    if importlib.util.find_spec("ultralytics") is None:
        _fail("ultralytics is not installed (a benchmark-only dependency): pip install --no-deps ultralytics==8.4.190")
    for k, v in (("YOLO_OFFLINE", "1"), ("YOLO_AUTOINSTALL", "false"), ("YOLO_VERBOSE", "False")):
        os.environ.setdefault(k, v)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(Path(tempfile.gettempdir()) / "litepose-peers-ultralytics"))
    with _torchvision_version_stub():
        import ultralytics
    return ultralytics


# -- runtimes: the same session settings as litepose's backends (litepose/runtime) -----------------


def ort_session(path: Path, threads: int) -> Callable[[np.ndarray], list[np.ndarray]]:
    """An ONNX Runtime CPU session run as litepose's OnnxRuntimeBackend runs it."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})


def ov_session(path: Path, threads: int, precision: str = "fp32") -> Callable[[np.ndarray], list[np.ndarray]]:
    """An OpenVINO IR (or ONNX file) compiled for the CPU as litepose's OpenVinoBackend compiles it
    (``precision`` bf16: the fp32 file computed in bf16, as ``litepose --precision bf16``)."""
    import openvino as ov

    hint = "bf16" if precision == "bf16" else "f32"
    core = ov.Core()
    compiled = core.compile_model(
        core.read_model(str(path)), "CPU",
        {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": threads},
    )  # fmt: skip
    request = compiled.create_infer_request()
    n = len(compiled.outputs)

    def run(x: np.ndarray) -> list[np.ndarray]:
        request.infer({0: x})
        return [request.get_output_tensor(i).data.copy() for i in range(n)]

    return run


# -- variants --------------------------------------------------------------------------------------


@dataclass
class Variant:
    """One timed row: ``network()`` runs the network alone; ``frame()`` the whole frame and
    returns (people found, per-stage milliseconds)."""

    model: str
    input_hw: tuple[int, int]
    runtime: str
    precision: str
    network: Callable[[], Any]
    frame: Callable[[], tuple[int, dict[str, float]]]
    size: int
    note: str = ""
    times: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in ("net", *STAGES, "total")})
    found: int = 0


def litepose_variants(
    weights: Path, frame_rgb: np.ndarray, size: int, runtimes: list[str], int8: bool, a: argparse.Namespace, tmp: Path
) -> tuple[list[Variant], list[dict[str, Any]]]:
    """LitePose XS at input size ``size`` on each runtime (ONNX Runtime int8 too with ``int8``),
    and an error row for each runtime that could not be prepared."""
    from litepose.export import export_model

    model = litepose.load_checkpoint(weights)[0]
    plan = [(r, "fp32") for r in runtimes] + ([("onnxruntime", "int8")] if int8 and "onnxruntime" in runtimes else [])
    plan += [("openvino", "bf16")] if a.bf16 and "openvino" in runtimes else []
    variants, errors = [], []
    for runtime, prec in plan:
        fmt, suffix = ("onnx", ".onnx") if runtime == "onnxruntime" else ("openvino", ".xml")
        try:
            path = tmp / f"litepose-xs-{size}-{file_precision(prec)}{suffix}"  # bf16: the fp32 file
            if not path.exists():
                export_model(model, fmt, path, input_size=size, int8=prec == "int8", int8_images=a.int8_images)
            p = litepose.Predictor(
                path, backend=runtime, threads=a.threads, input_size=size, flip_test=False,
                detection_threshold=a.threshold, precision=prec,
            )  # fmt: skip
            x, _geometry = p.network_input(frame_rgb)
        except Exception as e:  # this runtime fails; the others are still measured
            errors.append(_error_row("litepose-xs", size, runtime, prec, e))
            continue

        def frame(p: Any = p) -> tuple[int, dict[str, float]]:
            n = len(p(frame_rgb))
            last = p.timings.last
            return n, {"preprocess": last["preprocess"], "network": last["network"], "postprocess": last["decode"]}

        hw = (int(x.shape[2]), int(x.shape[3]))
        variants.append(Variant("litepose-xs", hw, runtime, prec, lambda p=p, x=x: p.backend.forward(x), frame, size))
    return variants, errors


def _set_bn_statistics(model: Any, frame_rgb: np.ndarray, size: int) -> None:
    """BatchNorm statistics of ``model`` taken from the frame itself (one pass in training mode):
    through ultralytics' freshly initialised layers the activations vanish, and every score and
    box of the head is then its bias, the same at every anchor of a level; normalised, the
    random network scores anchors differently, as a trained one does."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(frame_rgb)).permute(2, 0, 1)[None].float() / 255
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # the cumulative average: exactly this pass's statistics
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()


def _export_peer(name: str, size: int, dynamic: bool, fmt: str, frame_rgb: np.ndarray, tmp: Path) -> Path:
    """``name`` built from its yaml with one class (random weights, seed 0, BatchNorm statistics
    from the frame), exported by ultralytics into ``tmp``: the ``.onnx`` file, or the ``.xml``
    of the OpenVINO IR."""
    import torch
    from ultralytics import YOLO
    from ultralytics.nn.tasks import PoseModel

    yolo = YOLO(f"{name}.yaml")
    torch.manual_seed(0)  # the same weights in every export of this peer
    one_class = PoseModel(f"{name}.yaml", nc=1, verbose=False)  # the published COCO-pose models have 1 class
    _set_bn_statistics(one_class, frame_rgb, size)
    one_class.args, one_class.task = yolo.model.args, yolo.model.task
    yolo.model = one_class
    here = os.getcwd()
    work = tmp / f"{name}-{size}-{'rect' if dynamic else 'square'}-{fmt}"
    work.mkdir()
    os.chdir(work)  # the exporter writes next to the yaml's name, relative to the working folder
    try:
        out = yolo.export(
            format=fmt, imgsz=size, dynamic=dynamic, nms=False if "yolo26" in name else None, device="cpu",
            **({"simplify": False} if fmt == "onnx" else {}),  # onnxslim is not installed, and not needed
        )  # fmt: skip
    finally:
        os.chdir(here)
    path = (work / out).resolve()
    return next(path.glob("*.xml")) if path.is_dir() else path


def _quantize_peer(fp32: Path, out: Path, inputs: list[np.ndarray]) -> Path:
    """Static QDQ int8 of the peer's Conv layers with litepose's settings; first convolution and
    the head's output convolutions (plain Conv2d, not ultralytics' Conv blocks) left in fp32.
    ONNX Runtime's quantisation pre-processing first: the unsimplified export feeds most conv
    biases through Identity nodes, which the quantiser would otherwise skip."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = out.with_name(out.stem + "-pre.onnx")
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    proto = onnx.load(str(pre))
    convs = [n.name for n in proto.graph.node if n.op_type == "Conv"]
    head = max(int(c.split("/")[1].split(".")[1]) for c in convs if c.startswith("/model."))
    keep = [
        c
        for c in convs
        if c.startswith("/model.0/") or (c.startswith(f"/model.{head}/") and not c.endswith("/conv/Conv"))
    ]
    name = proto.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(inputs)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.it, None)
            return None if x is None else {name: x}

    quantize_static(
        str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["Conv"], nodes_to_exclude=keep,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
    )  # fmt: skip
    return out


def _conf_for(out: np.ndarray, end2end: bool, candidates: int) -> float:
    """The confidence threshold that lets the ``candidates`` highest-scoring rows of a peer's
    output (1, 4+1+51, anchors), or (1, 300, 6+51) for an end-to-end head, go on."""
    scores = np.sort((out[0, :, 4] if end2end else out[0, 4]).ravel())[::-1]
    return float(np.nextafter(scores[min(candidates, scores.size) - 1], -np.inf))


def peer_variants(
    name: str, frame_rgb: np.ndarray, size: int, shape: str, runtimes: list[str], int8: bool,
    a: argparse.Namespace, tmp: Path,
) -> tuple[list[Variant], list[dict[str, Any]]]:  # fmt: skip
    """One peer at ``size`` (``square``: static export, ``rect``: dynamic) on each runtime, and
    an error row for each runtime that could not be prepared."""
    import torch
    from ultralytics.models.yolo.pose import PosePredictor

    dynamic = shape == "rect"
    frame_bgr = np.ascontiguousarray(frame_rgb[..., ::-1])  # ultralytics' predictor takes BGR (OpenCV's order)
    onnx_fp32 = _export_peer(name, size, dynamic, "onnx", frame_rgb, tmp)
    nms = False if "yolo26" in name else None
    overrides = {"conf": 0.25, "batch": 1, "mode": "predict", "rect": True}  # what YOLO(...).predict() passes
    pred = PosePredictor(overrides={**overrides, "model": str(onnx_fp32), "imgsz": size, "nms": nms, "verbose": False})
    pred.setup_model(str(onnx_fp32), verbose=False)  # its metadata (stride, dynamic, end2end, kpt_shape, names)
    pred.setup_source(frame_bgr)
    pred.batch = (["frame"], [frame_bgr], [""])
    default_conf = pred.args.conf
    x = pred.preprocess([frame_bgr]).numpy()
    plan: list[tuple[str, str, Callable[[], Path]]] = []
    if "onnxruntime" in runtimes:
        plan.append(("onnxruntime", "fp32", lambda: onnx_fp32))
        if int8:

            def quantized() -> Path:
                from litepose.export.int8 import calibration_images

                calib = []
                for im in calibration_images(None, a.int8_images):  # RGB; ultralytics' preprocess takes BGR
                    xi = pred.preprocess([np.ascontiguousarray(im[..., ::-1])]).numpy()
                    calib += [xi, np.ascontiguousarray(xi[..., ::-1])]
                return _quantize_peer(onnx_fp32, onnx_fp32.with_name(onnx_fp32.stem + "-int8.onnx"), calib)

            plan.append(("onnxruntime", "int8", quantized))
    if "openvino" in runtimes:  # ultralytics' own OpenVINO export (OpenVINO cannot read YOLO26's ONNX file)
        ov_file = functools.lru_cache(maxsize=1)(lambda: _export_peer(name, size, dynamic, "openvino", frame_rgb, tmp))
        plan.append(("openvino", "fp32", ov_file))
        if a.bf16:
            plan.append(("openvino", "bf16", ov_file))
    variants, errors = [], []
    for runtime, prec, make in plan:
        try:
            if runtime == "onnxruntime":
                net = ort_session(make(), a.threads)
            else:
                net = ov_session(make(), a.threads, prec)
            conf = _conf_for(net(x)[0], pred.model.end2end, a.peer_candidates) if a.peer_candidates else default_conf
        except Exception as e:  # this runtime fails; the others are still measured
            errors.append(_error_row(name, size, runtime, prec, e))
            continue

        def frame(net: Callable[[np.ndarray], list[np.ndarray]] = net, conf: float = conf) -> tuple[int, dict]:
            pred.args.conf = conf
            t0 = time.perf_counter()
            im = pred.preprocess([frame_bgr])
            t1 = time.perf_counter()
            y = net(im.numpy())
            t2 = time.perf_counter()
            res = pred.postprocess(torch.from_numpy(y[0]), im, [frame_bgr])
            t3 = time.perf_counter()
            return len(res[0].boxes), {
                "preprocess": (t1 - t0) * 1e3, "network": (t2 - t1) * 1e3, "postprocess": (t3 - t2) * 1e3,
            }  # fmt: skip

        hw = (int(x.shape[2]), int(x.shape[3]))
        note = f"{shape}, conf {conf:.3g}"
        variants.append(Variant(name, hw, runtime, prec, lambda net=net: net(x), frame, size, note))
    return variants, errors


def _error_row(model: str, size: int, runtime: str, precision: str, e: BaseException) -> dict[str, Any]:
    text = (str(e).strip().splitlines() or [""])[0][:300]
    row = {
        "model": model,
        "size": size,
        "runtime": runtime,
        "precision": precision,
        "error": f"{type(e).__name__}: {text}",
    }
    print(f"{model} {size} {runtime} {precision}: not measured: {row['error']}", file=sys.stderr)
    return row


# -- timing and output -----------------------------------------------------------------------------


def measure(variants: list[Variant], runs: int, warmup: int) -> None:
    """Every variant ``warmup`` times, then ``runs`` rounds over all of them, alternating the order."""
    for v in variants:
        for _ in range(warmup):
            v.network()
            v.frame()
    for r in range(runs):
        for v in variants if r % 2 == 0 else variants[::-1]:
            t0 = time.perf_counter()
            v.network()
            v.times["net"].append((time.perf_counter() - t0) * 1e3)
            v.found, st = v.frame()
            for s in STAGES:
                v.times[s].append(st[s])
            v.times["total"].append(sum(st.values()))


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def row(v: Variant) -> dict[str, Any]:
    ap = AP.get((v.model, v.size))
    return {
        "model": v.model, "size": v.size, "input": list(v.input_hw), "runtime": v.runtime, "precision": v.precision,
        "coco_ap": ap[0] if ap else None, "ap_source": ap[1] if ap else None, "detections": v.found, "note": v.note,
        "network_only_ms": _stats(v.times["net"]), **{f"{s}_ms": _stats(v.times[s]) for s in STAGES},
        "frame_ms": _stats(v.times["total"]),
    }  # fmt: skip


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'model':<13}{'AP':>5} {'input':<8} {'runtime':<12}{'prec':<5}{'network':>9} {'min-max':<14}"
        f"{'prep':>7}{'net':>8}{'post':>7}{'frame':>8} {'min-max':<14}{'fps':>6}{'dets':>5}  note"
    )
    lines = [head]
    for r in rows:
        if "error" in r:
            lines.append(
                f"{r['model']:<13}      {r['size']:<8} {r['runtime']:<12}{r['precision']:<5}not measured: {r['error']}"
            )
            continue
        n, f = r["network_only_ms"], r["frame_ms"]
        stages = "".join(f"{r[f'{s}_ms']['median']:>{w}.1f}" for s, w in zip(STAGES, (7, 8, 7)))
        lines.append(
            f"{r['model']:<13}{r['coco_ap'] or '-':>5} {r['input'][0]}x{r['input'][1]:<4} {r['runtime']:<12}"
            f"{r['precision']:<5}{n['median']:>9.1f} {n['min']:.1f}-{n['max']:<9.1f}{stages}{f['median']:>8.1f} "
            f"{f['min']:.1f}-{f['max']:<9.1f}{1000 / f['median']:>6.1f}{r['detections']:>5}  {r['note']}"
        )
    lines.append(
        "(milliseconds, medians of the runs; network: the network alone; prep/net/post/frame: the whole frame;"
    )
    lines.append(" AP: published COCO val2017 keypoint AP at that input size, see the JSON's ap_source)")
    return "\n".join(lines)


def main() -> None:
    shared = Path(os.environ.get("LITEPOSE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default=str(shared / "ref/images/img_480x640.png"))
    ap.add_argument("--weights", default=str(shared / "ref/model_XS_17.pth"), help="LitePose XS checkpoint")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--peer-sizes", default="640,320")
    ap.add_argument("--peer-shapes", default="square,rect", help="square (static export), rect (dynamic)")
    ap.add_argument("--litepose-sizes", default="256", help="LitePose XS input sizes (short side), e.g. 256,448,512")
    ap.add_argument("--runtimes", default="onnxruntime,openvino")
    ap.add_argument("--int8", action=argparse.BooleanOptionalAction, default=True, help="ONNX Runtime int8 rows")
    ap.add_argument("--int8-images", type=int, default=8, help="generated images to calibrate int8 on")
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                    help="OpenVINO bf16 rows (default: where the CPU has AVX512-BF16 or AMX)")  # fmt: skip
    ap.add_argument("--peer-candidates", type=int, default=120, help="0: ultralytics' default confidence 0.25")
    ap.add_argument("--threshold", type=float, default=1.0, help="LitePose detection threshold")
    ap.add_argument("--json", default=None, help="also write the rows here")
    a = ap.parse_args()
    if a.bf16 is None:
        from litepose.runtime.auto import cpu_has_bf16

        a.bf16 = cpu_has_bf16()
    if a.runs < 1 or a.warmup < 0 or a.threads < 1:
        _fail("--runs and --threads must be at least 1, --warmup at least 0")
    runtimes = [r for r in a.runtimes.split(",") if r]
    bad = [r for r in runtimes if r not in ("onnxruntime", "openvino")]
    if bad:
        _fail(f"unknown runtime {bad[0]!r}: onnxruntime or openvino")
    missing = [r for r in runtimes if importlib.util.find_spec(r) is None]
    if missing:
        _fail(
            f"{', '.join(missing)} not installed: pip install 'litepose[runtime,openvino]' or drop it from --runtimes"
        )
    peers = [p for p in a.peers.split(",") if p]
    shapes = [sh for sh in a.peer_shapes.split(",") if sh]
    if any(p not in PEERS for p in peers) or any(sh not in ("square", "rect") for sh in shapes):
        _fail(f"--peers: choose among {', '.join(PEERS)}; --peer-shapes: square, rect")
    try:
        lp_sizes = [int(v) for v in a.litepose_sizes.split(",") if v]
        peer_sizes = [int(v) for v in a.peer_sizes.split(",") if v]
    except ValueError:
        _fail("--litepose-sizes and --peer-sizes take comma-separated integers")
    for f in (a.image, a.weights):
        if not Path(f).is_file():
            _fail(f"{f}: no such file (set LITEPOSE_SHARED to the shared folder)")
    import_ultralytics()
    import torch

    torch.set_num_threads(a.threads)  # ultralytics' pre/post-processing runs in torch
    frame_rgb = read_image(a.image, frame="upright")
    variants: list[Variant] = []
    errors: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="litepose-peers-") as tmpdir:
        tmp = Path(tmpdir)
        jobs: list[tuple[str, int, str, Callable[[], tuple[list[Variant], list[dict[str, Any]]]]]] = []
        for s in lp_sizes:
            make = lambda s=s: litepose_variants(Path(a.weights), frame_rgb, s, runtimes, a.int8, a, tmp)  # noqa: E731
            jobs.append(("litepose-xs", s, "", make))
        for name in peers:
            for s in peer_sizes:
                for shape in shapes:
                    make = lambda n=name, s=s, sh=shape: peer_variants(n, frame_rgb, s, sh, runtimes, a.int8, a, tmp)  # noqa: E731
                    jobs.append((name, s, shape, make))
        for name, s, shape, make in jobs:
            print(f"preparing {name} {s} {shape}".rstrip(), file=sys.stderr)
            try:
                made, failed = make()
            except Exception as e:  # the model itself fails (its export): the others are still measured
                made, failed = [], [_error_row(name, s, "-", "-", e)]
            variants += made
            errors += failed
        print(f"timing {len(variants)} variants, {a.runs} runs", file=sys.stderr)
        measure(variants, a.runs, a.warmup)
    rows = [row(v) for v in variants] + errors
    print(table(rows))
    if a.json:
        meta = {"image": a.image, "threads": a.threads, "runs": a.runs, "warmup": a.warmup,
                "ultralytics": importlib.metadata.version("ultralytics"), "torch": torch.__version__}  # fmt: skip
        Path(a.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
