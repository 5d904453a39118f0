"""The options the commands share, each defined once: the same flag means the same thing, with
the same default and help text, in every command that takes it.

Groups (``litepose VERB --help`` shows each as a section; docs/cli.md tabulates which verb takes
which):

- ``data``: ``--data`` (a COCO-format keypoint JSON or a SynthPose folder; each help says what
  for), ``--images``;
- ``model``: ``--weights``, ``--model``, ``--input-size``;
- ``inference``: ``--threshold``, ``--tag-threshold``, ``--scales``, ``--no-flip``, ``--legacy``,
  ``--max-people``, ``--keypoints``, ``--backend``, ``--chain``;
- ``device``: ``--device`` (default ``auto``: CUDA when available, else CPU), ``--threads``;
- ``tracking``: ``--track``, ``--smooth`` and the tracker's and smoother's parameters
  (:class:`litepose.Tracker`, docs/tracking.md);
- ``output``: ``--output``, a folder or a file (each help text says which);
- ``json``: ``--json``: stdout is exactly one JSON object, the command's summary (its keys are
  listed in docs/cli.md), and every log line goes to stderr.

A command reports its result through :func:`emit` (text, or the summary under ``--json``); the
command line (:func:`litepose.cli.main`) prints the summary and applies ``--threads``.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..device import AUTO
from ..formats import AUTO_BACKEND, BACKENDS, FORMATS, PRECISIONS, is_exported

__all__ = [
    "GROUPS",
    "SHARED",
    "add_data_options",
    "add_model_options",
    "add_input_size",
    "add_inference_options",
    "add_device_options",
    "add_output_option",
    "add_json_option",
    "add_tracking_options",
    "tracker_settings",
    "add_option",
    "emit",
    "output_folder",
    "check_fraction",
    "apply_threads",
    "exported_weights",
    "build_predictor",
    "parse_scales",
]


def comma_list(kind: type, example: str) -> Callable[[str], tuple]:
    """An argparse type: ``"1,0.5"`` -> ``(1.0, 0.5)`` with ``kind`` the element type; ``example``
    shows the form in the error message."""

    def parse(text: str) -> tuple:
        try:
            values = tuple(kind(v) for v in text.split(",") if v.strip())
        except ValueError:
            message = f"expected comma-separated numbers such as {example}, got {text!r}"
            raise argparse.ArgumentTypeError(message) from None
        if not values:
            raise argparse.ArgumentTypeError(f"give at least one value, e.g. {example}")
        return values

    return parse


#: argparse type of ``--scales``: ``"1,0.5"`` -> ``(1.0, 0.5)``
parse_scales = comma_list(float, "1,0.5")


#: Overlays (predict, demo) draw, and the tracker follows, people whose person score (mean joint
#: score) is at least this. A trained model's people score 0.4-0.8 and the decoder's leftover
#: candidates below 0.3; results.json keeps them all (they cost COCO AP nothing and add recall).
MIN_SCORE = 0.3

#: Every shared option but ``--data`` and ``--output`` (whose help says what they hold for the verb):
#: argparse keywords, and under ``"predictor"`` the :class:`~litepose.Predictor` keyword it sets
#: (``--no-flip``: the negation).
SHARED: dict[str, dict[str, Any]] = {
    "--weights": {
        "metavar": "W",
        "help": "checkpoint: a file (litepose's, the original's or the mmpose port's), a name from "
        "'litepose weights', or a file of 'litepose export' (.onnx, OpenVINO .xml, .torchscript)",
    },
    "--model": {
        "metavar": "NAME",
        "help": "architecture (litepose-xs/-s/-m/-l): with --weights, overrides the file's; "
        "alone, random weights (for trying the pipeline only)",
    },
    "--input-size": {
        "metavar": "N",
        "type": int,
        "help": "network input size in pixels, the short side: a positive multiple of 16 (default: the model's own)",
        "predictor": "input_size",
    },
    "--threshold": {
        "metavar": "T",
        "type": float,
        "default": 0.1,
        "help": "detection threshold, in [0, 1] (default 0.1)",
        "predictor": "detection_threshold",
    },
    "--tag-threshold": {
        "metavar": "T",
        "type": float,
        "default": 1.0,
        "help": "largest tag distance that joins a joint to a person (default 1.0)",
        "predictor": "tag_threshold",
    },
    "--scales": {
        "metavar": "S,S",
        "type": parse_scales,
        "default": (1.0,),
        "help": "test scales, comma-separated; several need 1 among them (default 1)",
        "predictor": "scales",
    },
    "--no-flip": {
        "action": "store_true",
        "help": "no flip test (about 2x faster network; predict's default for videos, streams and webcams)",
        "predictor": "flip_test",
    },
    "--legacy": {
        "action": "store_true",
        "help": "decode as the original did, defects included, on the original chain (to reproduce published "
        "numbers; bit-exact on the torch backend, scores within 1e-5 on ONNX Runtime / OpenVINO: docs/inference.md)",
        "predictor": "legacy",
    },
    "--max-people": {
        "metavar": "N",
        "type": int,
        "default": 30,
        "help": "people per image at most (default 30)",
        "predictor": "max_people",
    },
    "--keypoints": {
        "metavar": "NAME|YAML",
        "help": "keypoint set override: coco, crowdpose or a YAML description (default: the checkpoint's)",
        "predictor": "keypoints",
    },
    "--backend": {
        "metavar": "B",
        "choices": (AUTO_BACKEND, *BACKENDS),
        "default": AUTO_BACKEND,
        "help": "where the network runs: auto (an exported file on its own runtime: "
        + ", ".join(f"{f.suffix} {f.backend}" for f in FORMATS.values())
        + "; a checkpoint on the CPU on the fastest runtime installed for --precision, exported once into "
        "$LITEPOSE_HOME/exports; on CUDA torch), " + ", ".join(BACKENDS),
        "predictor": "backend",
    },
    "--precision": {
        "metavar": "P",
        "choices": PRECISIONS,
        "help": "what the network computes in: fp32, bf16 (OpenVINO, on a CPU with AVX512-BF16 or AMX) or int8 "
        "(a checkpoint is quantised once on generated images and cached) (default: an exported file's own, "
        "else fp32)",
        "predictor": "precision",
    },
    "--chain": {
        "metavar": "C",
        "choices": ("fast", "original"),
        "help": "post-processing: fast (grouped at the network's 1/2-resolution output, sub-pixel refined; the "
        "same AP, several times faster) or original (maps brought to the input size, then grouped, as the "
        "original; the decoder keeps its fixes unless --legacy; exactness: docs/inference.md) "
        "(default: fast; original with --legacy)",
        "predictor": "chain",
    },
    "--device": {
        "metavar": "D",
        "default": AUTO,
        "help": "torch device: auto (CUDA when available, else CPU; the default), cpu, cuda, cuda:1",
        "predictor": "device",
    },
    "--threads": {
        "metavar": "N",
        "type": int,
        "help": "CPU threads for the network's runtime (torch, ONNX Runtime, OpenVINO; default: the runtime's own; "
        "1 is often fastest on a busy machine) and for the decoder's merge, peak search and refine (default: "
        "every CPU)",
        "predictor": "threads",
    },
    "--track": {
        "action": "store_true",
        "help": "track people across video frames: each gets a stable integer track_id (null while tentative)",
    },
    "--smooth": {
        "action": "store_true",
        "help": "with --track: One-Euro smoothing of each track's keypoints (less jitter, about 1 frame of lag)",
    },
    "--min-hits": {
        "metavar": "N",
        "type": int,
        "default": 2,
        "tracker": "min_hits",
        "help": "with --track: matched frames in a row before a new track gets its id (default 2)",
    },
    "--max-misses": {
        "metavar": "M",
        "type": int,
        "default": 30,
        "tracker": "max_misses",
        "help": "with --track: missed frames after which a track ends; shorter occlusions keep the id (default 30)",
    },
    "--min-similarity": {
        "metavar": "S",
        "type": float,
        "default": 0.2,
        "tracker": "min_similarity",
        "help": "with --track: least OKS between a person and a track's predicted pose to match them (default 0.2)",
    },
    "--min-score": {
        "metavar": "S",
        "type": float,
        "default": MIN_SCORE,
        "tracker": "min_score",
        "help": f"people scoring under S are not drawn, and with --track neither tracked nor written to the JSON "
        f"lines; results.json keeps everyone (default {MIN_SCORE})",
    },
    "--smooth-cutoff": {
        "metavar": "HZ",
        "type": float,
        "default": 5.0,
        "smoother": "min_cutoff",
        "help": "with --smooth: One-Euro cutoff at rest, Hz; lower is smoother but lags more (default 5)",
    },
    "--smooth-beta": {
        "metavar": "B",
        "type": float,
        "default": 0.5,
        "smoother": "beta",
        "help": "with --smooth: One-Euro cutoff rise per person size per second of speed (default 0.5)",
    },
    "--images": {"metavar": "DIR", "help": "image folder of --data (default: found beside the JSON)"},
    # in no group: options a few verbs have in common
    "--seed": {
        "metavar": "S",
        "type": int,
        "default": 0,
        "help": "random seed: the same seed, the same result (default 0)",
    },
    "--supernet": {
        "help": "supernet checkpoint (original release or litepose run; a file or a weights name)",
    },
    "--arch": {
        "metavar": "ARCH",
        "help": "a subnet of the supernet: a preset (litepose-xs ...) or an architecture JSON "
        "(train: the fixed subnet to train; transfer: the subnet to extract)",
    },
    "--int8-images": {
        "metavar": "N",
        "type": int,
        "default": 32,
        "help": "int8 calibration: how many images (from --calib, else generated SynthPose images; default 32)",
    },
    "--calib-images": {
        "metavar": "N",
        "type": int,
        "default": None,
        "help": "training images that re-estimate BatchNorm statistics (default: transfer 512; search 32, "
        "per candidate)",
    },
    "--val-images": {
        "metavar": "N",
        "type": int,
        "default": None,
        "help": "validation images: how many (demo: SynthPose images made, default the recipe's; "
        "search: the first N of the validation set scored per candidate, default 40)",
    },
    "--resume": {
        "default": "auto",
        "help": "'auto' (continue the run in --output if there is one; the default), 'no' (start over), "
        "or a path (train: a last.pth to continue)",
    },
    "--json": {
        "action": "store_true",
        "help": "print one JSON object, the command's summary (keys: docs/cli.md), on stdout; logs go to stderr",
    },
}

#: The shared groups, by title (the argparse group titles ``--help`` shows), and their options.
GROUPS: dict[str, tuple[str, ...]] = {
    "data": ("--data", "--images"),
    "model": ("--weights", "--model", "--input-size"),
    "inference": (
        "--threshold", "--tag-threshold", "--scales", "--no-flip", "--legacy", "--max-people", "--keypoints",
        "--chain",
    ),  # fmt: skip
    "device": ("--device", "--threads"),
    "tracking": (
        "--track",
        "--smooth",
        "--min-hits",
        "--max-misses",
        "--min-similarity",
        "--min-score",
        "--smooth-cutoff",
        "--smooth-beta",
    ),
    "output": ("--output",),
    "json": ("--json",),
}


def _group(p: argparse.ArgumentParser, title: str) -> argparse._ArgumentGroup:
    """The parser's argument group ``title``, made on first use (``--help`` shows it as a section)."""
    return next((g for g in p._action_groups if g.title == title), None) or p.add_argument_group(title)


def _argparse_spec(flag: str) -> dict[str, Any]:
    """The argparse keywords of a shared option (without the Predictor / Tracker keys)."""
    return {k: v for k, v in SHARED[flag].items() if k not in ("predictor", "tracker", "smoother")}


def _add(p: argparse.ArgumentParser, title: str, *flags: str) -> None:
    """Add ``flags``, as :data:`SHARED` defines them, to the parser's group ``title``."""
    for flag in flags:
        _group(p, title).add_argument(flag, **_argparse_spec(flag))


def add_data_options(p: argparse.ArgumentParser, what: str, *, required: bool) -> None:
    """``--data`` (a COCO-format keypoint JSON or a SynthPose folder, used for ``what``) and ``--images``."""
    text = f"COCO-format keypoint JSON or SynthPose folder (annotations.json + images/): {what}"
    _group(p, "data").add_argument("--data", metavar="D", required=required, default=None, help=text)
    _add(p, "data", "--images")


def add_option(p: argparse.ArgumentParser, flag: str, *, required: bool = False) -> None:
    """A shared option that belongs to no group (``--seed``, ``--arch``), among the verb's own."""
    p.add_argument(flag, required=required, **_argparse_spec(flag))


def add_input_size(p: argparse.ArgumentParser) -> None:
    """``--input-size`` alone (of the model group): for verbs that size a model but load none."""
    _add(p, "model", "--input-size")


def add_model_options(p: argparse.ArgumentParser) -> None:
    """``--weights``, ``--model``, ``--input-size``: which network runs."""
    _add(p, "model", *GROUPS["model"])


def add_inference_options(p: argparse.ArgumentParser) -> None:
    """The Predictor's settings (:class:`litepose.Predictor`, with the same defaults), and
    ``--backend`` (a verb that runs networks but decodes nothing, ``search``, takes it alone)."""
    _add(p, "inference", *GROUPS["inference"], "--backend", "--precision")


def add_device_options(p: argparse.ArgumentParser) -> None:
    """``--device`` and ``--threads``: where the network runs."""
    _add(p, "device", *GROUPS["device"])


def add_output_option(
    p: argparse.ArgumentParser,
    kind: str,
    what: str,
    default: str | None = None,
    *,
    required: bool = False,
    default_text: str | None = None,
) -> None:
    """``--output``: a ``kind`` ("folder" or "file") for ``what``; the help says which, and the default
    (``default_text`` where it is computed, e.g. from the config's name)."""
    if kind not in ("folder", "file"):
        raise ValueError(f"--output is a folder or a file, not {kind!r}")
    shown = default_text or default
    tail = "required" if required else f"default: {shown}" if shown else "default: none written"
    metavar, text = ("DIR" if kind == "folder" else "FILE"), f"output {kind}: {what} ({tail})"
    _group(p, "output").add_argument("--output", metavar=metavar, default=default, required=required, help=text)


def add_tracking_options(p: argparse.ArgumentParser) -> None:
    """``--track``, ``--smooth`` and their parameters (:class:`litepose.Tracker`)."""
    _add(p, "tracking", *GROUPS["tracking"])


def tracker_settings(args: argparse.Namespace) -> tuple[Any, Any]:
    """The tracking group as ``(TrackerConfig, OneEuroConfig or None)``, or ``(None, None)`` without
    ``--track``; ``--smooth`` alone is a one-line error."""
    if not args.track:
        if args.smooth:
            raise ValueError("--smooth smooths tracks: give --track too")
        return None, None
    from ..track import OneEuroConfig, TrackerConfig

    config = TrackerConfig(**library_settings(args, "tracker"))
    smooth = OneEuroConfig(**library_settings(args, "smoother")) if args.smooth else None
    return config, smooth


def library_settings(args: argparse.Namespace, target: str) -> dict[str, Any]:
    """The parsed values of the shared options that set a field of the library's ``target``
    (``"predictor"``, ``"tracker"``, ``"smoother"``: the key of :data:`SHARED`), by that field's
    name; an option the command lacks is left out (the library's default holds), ``--no-flip``
    becomes ``flip``."""
    settings = {}
    for flag, spec in SHARED.items():
        dest = flag[2:].replace("-", "_")
        if target in spec and hasattr(args, dest):
            value = getattr(args, dest)
            settings[spec[target]] = not value if flag == "--no-flip" else value
    return settings


def add_json_option(p: argparse.ArgumentParser) -> None:
    """``--json``: the summary as one JSON object on stdout, logs on stderr."""
    _add(p, "json", "--json")


def emit(args: argparse.Namespace, summary: dict[str, Any], text: str | None) -> None:
    """Report a command's result: ``text`` on stdout, or under ``--json`` the ``summary`` (printed
    by the command line as the one JSON object of stdout)."""
    if getattr(args, "json", False):
        args._summary = summary
    elif text:
        print(text)


def output_folder(path: str | Path, *, make: bool = True) -> Path:
    """``--output`` as a folder, made when missing (unless not ``make``: the command makes it once its
    other values are checked); a file in its place is a one-line error."""
    if not str(path).strip():
        raise ValueError("--output is empty: give a folder (an empty name would mean the current folder)")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"--output {p}: exists and is a file, not a folder")
    if not make:
        return p
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--output {p}: cannot make the folder ({e.strerror or e})") from None
    return p


def check_fraction(flag: str, value: float) -> float:
    """A threshold option: a finite number in [0, 1] (a NaN would silently select nothing)."""
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{flag} must be a number in [0, 1], got {value}")
    return value


def exported_weights(args: argparse.Namespace) -> bool:
    """Whether ``--weights`` names a file of ``litepose export`` (run without torch), or a weights
    name of an exported network (``litepose-auto-s-coco``, an OpenVINO IR: run by its backend)."""
    from ..runtime import named_export

    w = getattr(args, "weights", None)
    return bool(w) and (is_exported(w) or named_export(w) is not None)


def apply_threads(args: argparse.Namespace) -> None:
    """``--threads N``: torch's CPU threads for the rest of the process (an exported ``--weights``
    file: its runtime's, set by :func:`build_predictor`, and torch is not imported)."""
    n = getattr(args, "threads", None)
    if n is None:
        return
    if n < 1:
        raise ValueError(f"--threads must be at least 1, got {n}")
    if exported_weights(args):
        return
    import torch

    torch.set_num_threads(n)


def build_predictor(args: argparse.Namespace) -> Any:
    """The :class:`~litepose.Predictor` of the model and inference groups (and ``--device``,
    ``--threads``). An exported ``--weights`` file is opened by its runtime, without torch."""
    from ..predictor import Predictor

    settings = library_settings(args, "predictor")
    if exported_weights(args) and args.model:
        raise ValueError(f"--model: {args.weights} is an exported network, its architecture is fixed")
    if args.weights and not args.model:  # a file or name: --backend auto can export and cache it
        return _said(Predictor(args.weights, **settings))
    from ..models import create_model, load_checkpoint

    if args.weights:
        model, _info = load_checkpoint(args.weights, arch=args.model)
    elif args.model:
        joints = 17
        if args.keypoints:
            from ..data.description import load_keypoint_set

            joints = load_keypoint_set(args.keypoints).num_joints
        model = create_model(args.model, num_joints=joints)
        print(
            f"warning: --model {args.model} without --weights: the network has random weights, "
            "so the detected people are meaningless (use it to try the pipeline only)",
            file=sys.stderr,
        )
    else:
        raise ValueError("give --weights W (a checkpoint) or --model NAME (random weights, for trying the pipeline)")
    return _said(Predictor(model, **settings))


def _said(predictor: Any) -> Any:
    """``predictor``, after one line on stderr saying which runtime runs it (and why, with auto)."""
    print(f"runtime: {predictor.runtime}", file=sys.stderr)
    return predictor
