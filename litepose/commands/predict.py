"""``litepose predict``: people and keypoints in images, folders, globs, videos or a webcam.

Writes skeleton overlays ``OUT/<stem>.jpg``, optionally ``OUT/results.json`` (COCO results
format), and for videos ``OUT/<stem>.mp4`` (overlaid, mp4v) plus ``OUT/<stem>.jsonl`` (one
JSON line per frame).

With ``--track`` (docs/tracking.md) every person in a video, a webcam stream or a folder or glob
of images taken as the frames of one video (in name order) gets a ``track_id``: a stable integer,
``null`` while its track is tentative; overlays draw each id in a colour of its own, and a
folder's frames also get ``OUT/<folder>.jsonl``, one line per frame (``file_name`` included).
``--smooth`` filters each track's keypoints (One-Euro). ``--show`` displays the overlays with
the frame rate; a webcam is read by a thread that keeps only the newest frame, so a slow model
drops frames instead of falling behind.

Each input is handled on its own: an image or frame that fails (unreadable, too large, out of
memory, not in ``--ann``) is reported by name and skipped, and the run goes on; the exit code is
non-zero only when nothing could be processed. ``results.json`` is rewritten whole (atomically,
so it is always valid JSON) every few seconds and on every exit, Ctrl-C included (exit code 130,
with the results of the images done so far).

Image ids (``results.json``): with ``--ann``, the annotations' id of each file name; otherwise
every file's numeric stem when all have one and no two are equal (COCO's ``000000000139.jpg`` ->
139), else a running index 1..N over all files, mapped in ``OUT/image_ids.json`` (file -> id).
Each result also names its ``file_name``, so that ``litepose val`` can refuse ids that do not
match the annotations.

Pixel frame: with ``--ann`` (results to be scored against annotations), images are read in the
stored frame, the one COCO-format keypoints use, so that ``predict`` then ``val --results``
equals ``val --weights``; without it they are turned upright by their EXIF orientation, and a
result of an image that this turned carries ``"frame": "upright"`` (which ``val`` refuses). The
summary's ``frame`` says which was used.
"""

from __future__ import annotations

import argparse
import sys

HELP = "detect people and their keypoints in images, folders, globs, videos or a webcam"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from . import _options as o

    p.add_argument(
        "source",
        metavar="SOURCE",
        help="image file, folder, glob ('imgs/*.jpg'), video file, stream URL (rtsp://, http(s)://) or camera "
        "(index, /dev/videoN)",
    )
    p.add_argument("--save-json", action="store_true", help="write OUT/results.json (COCO results format)")
    p.add_argument(
        "--ann", metavar="COCO.json",
        help="COCO annotations to score against: results.json then has their image ids and category, and "
        "keypoints in their (stored, not EXIF-turned) pixel frame",
    )  # fmt: skip
    p.add_argument("--show", action="store_true", help="also display results in a window")
    p.add_argument(
        "--no-video", action="store_true",
        help="for videos, streams and webcams write no overlay OUT/<stem>.mp4 (the .jsonl still; images keep "
        "their overlays): nothing is drawn or encoded",
    )  # fmt: skip
    p.add_argument(
        "--flip", action="store_true",
        help="flip test on videos, streams and webcams too: they run without it by default (about 2x faster "
        "network), images keep it (as the paper evaluates)",
    )  # fmt: skip
    p.add_argument(
        "--kpt-threshold", metavar="S", type=float, default=0.1, help="joints drawn above this score, in [0, 1]"
    )
    o.add_model_options(p)
    o.add_inference_options(p)
    o.add_tracking_options(p)
    o.add_device_options(p)
    o.add_output_option(p, "folder", "overlays, results.json, per-video .mp4 and .jsonl", "runs/predict")
    o.add_json_option(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..files import shown
    from ..interrupt import exit_code
    from ..pipeline import Stream, plan_outputs, resolve_source
    from ..pipeline.result import speed_line
    from ._options import build_predictor, check_fraction, emit, output_folder, tracker_settings

    check_fraction("--kpt-threshold", args.kpt_threshold)
    check_fraction("--min-score", args.min_score)
    out = output_folder(args.output, make=False)
    tracker, smooth = tracker_settings(args)
    inputs = tuple(Path(f) for f in (args.weights,) if f)
    sources = resolve_source(args.source)
    if args.flip and args.no_flip:
        raise ValueError("--flip and --no-flip contradict each other")
    video_only = bool(sources.videos) and not sources.images
    if video_only and not args.flip:  # real time by default on video; images keep the paper's flip test
        args.no_flip = True
    plan_outputs(sources, out, track=args.track, inputs=(args.ann, *inputs))  # before the model loads
    sources.open_streams()  # a stream that cannot be reached: one line and exit 2, before the model loads
    run = Stream(
        sources, build_predictor(args), output=out, track=args.track, tracker=tracker, smooth=smooth,
        save_json=args.save_json, ann=args.ann, save_video=not args.no_video, show=args.show,
        kpt_threshold=args.kpt_threshold,
        min_score=args.min_score, inputs=inputs, show_label="--show",
        owner="litepose predict",
    )  # fmt: skip
    with run:
        try:
            for _ in run:
                pass
        finally:
            for name, reason in run.skipped:
                print(f"skipped {shown(name)}: {shown(reason)}", file=sys.stderr)
            if run.stopped:
                kept = f"; results so far in {run.summary()['results_json']}" if run.summary()["results_json"] else ""
                print(f"interrupted by {run.stopped}: stopped after {run.images} image(s), {run.frames} video "
                      f"frame(s){kept}", file=sys.stderr)  # fmt: skip
    summary = {**run.summary(), "flip_test": not args.no_flip}
    if run.stopped:
        emit(args, summary, None)
        return exit_code()
    if run.images + run.frames == 0:
        print("litepose predict: nothing could be processed", file=sys.stderr)
        emit(args, summary, None)
        return 1
    t = summary["ms_per_image"]
    what = ", ".join(s for s in (f"{run.images} image(s)" if run.images else "",
                                 f"{run.frames} video frame(s)" if run.frames else "") if s)  # fmt: skip
    speed = (
        f"{t['total']:.1f} ms per image (preprocess {t['preprocess']:.1f}, network {t['network']:.1f}, decode "
        f"{t['decode']:.1f})"
    )
    if "video" in summary:
        speed = speed_line(summary["video"]) + (f"; images: {speed}" if run.images else "")
    flip = "flip test on" if not args.no_flip else "flip test off"
    if args.no_flip and video_only and not args.flip:
        flip += " (video default; --flip turns it on)"
    emit(
        args,
        summary,
        f"{what}, {run.people} people; {flip}; {speed}; results in {summary['output']}"
        + (f"; {len(run.skipped)} skipped" if run.skipped else ""),
    )
    return 0

