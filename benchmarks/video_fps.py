"""End-to-end frames per second of ``litepose predict VIDEO`` (reading, inference, drawing and
writing the overlay video), before and after a change, variants alternated round by round so
that a machine's changing load falls on all of them alike.

Each run is ``litepose predict VIDEO --weights W [flags] --output TMP --json`` in a fresh process;
its frame rate is the video's frames over the time its frame loop took, from the first frame
read to the overlay video closed (model loading and start-up left out, the same for both code
versions: the loop is timed around ``Stream.__iter__``, which both have). For the code that
reports them (``--json``'s ``video``), the run's own ``fps`` and ``inference_fps`` (what
inference alone allows: 1000 / the median of preprocess + network + decode) are kept too, and
their ratio is the issue's done-when figure.

Usage: python benchmarks/video_fps.py [--base DIR] [--int8 XML] [--rounds R] [--videos V ...]
       [--variants default no-flip int8 ...] [--json FILE]

``--base DIR``: a copy of the code to compare with (``git archive REV litepose | tar -x -C DIR``),
run with ``PYTHONPATH=DIR``; without it only this checkout runs. ``--int8 XML``: an OpenVINO int8
export (``litepose export --weights W --format openvino --int8``, which needs nncf); the ``int8``
variant is left out without it. Variants: ``default`` (no flag), ``no-flip`` (``--no-flip``),
``int8`` (the export, ``--no-flip``), ``no-video`` (``--no-video``, this checkout only).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LITEPOSE_SHARED", REPO.parent / "shared"))

#: Runs ``litepose predict`` with the frame loop timed; prints {"loop_s", "frames", "video"} last.
DRIVER = r"""
import json, sys, time
import litepose.pipeline.runner as runner
timing = {}
original = runner.Stream.__iter__
def timed(self):
    start = time.perf_counter()
    try:
        yield from original(self)
    finally:
        timing["loop_s"] = time.perf_counter() - start
runner.Stream.__iter__ = timed
from litepose.cli import main
import contextlib, io
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(sys.argv[1:])
summary = json.loads(out.getvalue())
print(json.dumps({"code": code, "loop_s": timing.get("loop_s"), "frames": summary["video_frames"],
                  "video": summary.get("video")}))
"""


def run_once(video: Path, flags: list[str], pythonpath: Path | None) -> dict:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    with tempfile.TemporaryDirectory(prefix="video_fps_") as out:
        cmd = [sys.executable, "-c", DRIVER, "predict", str(video), *flags, "--output", out, "--json"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir(), timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[3:])} failed:\n{proc.stderr[-2000:]}")
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    found["fps_loop"] = found["frames"] / found["loop_s"]
    return found


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=str(SHARED / "ref/model_XS_17.pth"))
    ap.add_argument(
        "--int8", type=lambda p: str(Path(p).resolve()), help="an OpenVINO int8 export of --weights ('int8')"
    )
    ap.add_argument("--base", help="a copy of the code to compare with (run with PYTHONPATH=BASE)")
    ap.add_argument("--videos", nargs="+", default=sorted(str(p) for p in (SHARED / "data/video").glob("*.mp4")))
    ap.add_argument("--variants", nargs="+", default=["default", "no-flip", "int8"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="also write every run's figures to this file")
    args = ap.parse_args()

    variants = {
        "default": ["--weights", args.weights],
        "no-flip": ["--weights", args.weights, "--no-flip"],
        "int8": ["--weights", args.int8 or "", "--no-flip"],
        "no-video": ["--weights", args.weights, "--no-video"],
    }
    chosen = [v for v in args.variants if v != "int8" or args.int8]
    versions = [("before", Path(args.base))] if args.base else []
    versions.append(("after", None))
    runs: dict[tuple[str, str, str], list[dict]] = {}
    for r in range(args.rounds):
        for video in args.videos:
            for variant in chosen:
                for version, path in versions if r % 2 == 0 else versions[::-1]:  # alternate who goes first
                    if variant == "no-video" and version == "before":
                        continue
                    found = run_once(Path(video).resolve(), variants[variant], path)
                    runs.setdefault((Path(video).name, variant, version), []).append(found)
                    extra = ""
                    if found.get("video"):
                        v = found["video"]
                        extra = f"; its own: {v['fps']} frames/s, inference alone {v['inference_fps']}"
                    print(f"round {r + 1} {Path(video).name} {variant} {version}: {found['fps_loop']:.2f} frames/s"
                          + extra, flush=True)  # fmt: skip
    print("\nframes/s of the frame loop, median (min-max) over", args.rounds, "rounds")
    print(f"{'video':45s} {'variant':9s} {'version':7s} {'loop fps':22s} {'run fps':22s} {'inference fps':22s} ratio")
    for (video, variant, version), found in runs.items():
        own = [f["video"]["fps"] for f in found if f.get("video")]
        alone = [f["video"]["inference_fps"] for f in found if f.get("video")]
        ratio = [a / b for a, b in zip(own, alone) if b]
        print(f"{video:45s} {variant:9s} {version:7s} {spread([f['fps_loop'] for f in found]):22s} {spread(own):22s} "
              f"{spread(alone):22s} {spread(ratio)}")  # fmt: skip
    if args.json:
        rows = [{"video": k[0], "variant": k[1], "version": k[2], "runs": v} for k, v in runs.items()]
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
