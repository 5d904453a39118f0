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
import glob
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HELP = "detect people and their keypoints in images, folders, globs, videos or a webcam"

_GLOB_CHARS = set("*?[")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from . import _options as o

    p.add_argument(
        "source", metavar="SOURCE", help="image file, folder, glob ('imgs/*.jpg'), video file or webcam index"
    )
    p.add_argument("--save-json", action="store_true", help="write OUT/results.json (COCO results format)")
    p.add_argument(
        "--ann", metavar="COCO.json",
        help="COCO annotations to score against: results.json then has their image ids and category, and "
        "keypoints in their (stored, not EXIF-turned) pixel frame",
    )  # fmt: skip
    p.add_argument("--show", action="store_true", help="also display results in a window")
    p.add_argument(
        "--kpt-threshold", metavar="S", type=float, default=0.1, help="joints drawn above this score, in [0, 1]"
    )
    o.add_model_options(p)
    o.add_inference_options(p)
    o.add_tracking_options(p)
    o.add_device_options(p)
    o.add_output_option(p, "folder", "overlays, results.json, per-video .mp4 and .jsonl", "runs/predict")
    o.add_json_option(p)


# -- sources -------------------------------------------------------------------------------------


def _resolve_source(source: str) -> tuple[list[Path], list[Path | int], list[tuple[str, str]]]:
    """(image files, videos or webcam indices, skipped (name, reason))."""
    from ..media import IMAGE_SUFFIXES, VIDEO_SUFFIXES

    if source.isdigit() and not Path(source).exists():
        return [], [int(source)], []
    if _GLOB_CHARS & set(source) and not Path(source).exists():
        files = sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file())
        if not files:
            raise FileNotFoundError(f"{source}: the pattern matches no file")
        explicit = False
    else:
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            if not files:
                raise FileNotFoundError(f"{source}: the folder has no files")
            explicit = False
        elif path.is_file():
            files, explicit = [path], True
        else:
            raise FileNotFoundError(f"{source}: no such file, folder or glob match (or webcam index)")
    images, videos, skipped = [], [], []
    for f in files:
        suffix = f.suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            videos.append(f)
        elif suffix in IMAGE_SUFFIXES or explicit:
            images.append(f)  # an explicit file of unknown type is tried as an image
        else:
            skipped.append((str(f), "not an image or video file"))
    return images, videos, skipped


# -- outputs -------------------------------------------------------------------------------------


def _person_json(p: dict[str, Any]) -> dict[str, Any]:
    out = {
        "keypoints": [[round(float(x), 2), round(float(y), 2), round(float(s), 4)] for x, y, s in p["keypoints"]],
        "score": round(float(p["score"]), 5),
        "box": [round(float(v), 2) for v in p["box"]],
    }
    if "track_id" in p:
        out["track_id"] = p["track_id"]
    if p.get("predicted"):
        out["predicted"] = True  # --track: a track's predicted pose, filling a missed frame
    return out


class _Ids:
    """image_id and category_id for COCO results (the module docstring gives the scheme)."""

    def __init__(self, ann: str | None, files: list[Path], num_joints: int) -> None:
        self.ann = ann
        self.category = 1
        # with --ann: file name -> id (None: a name two of its images share); else: path -> id
        self._ids: dict[str, int | str | None] = {}
        self.mapping: dict[str, int] | None = None  # the running index, written to image_ids.json
        if ann:
            from ..data.coco import load_annotations

            data = load_annotations(ann)
            if data.num_joints != num_joints:
                raise ValueError(
                    f"{ann}: the annotations have {data.num_joints} keypoints per person, the model predicts "
                    f"{num_joints}: choose annotations (or weights) of the same keypoint set"
                )
            self.category = data.category_id
            for im in data.dataset["images"]:
                name = Path(im["file_name"]).name
                self._ids[name] = None if name in self._ids else im["id"]
            return
        stems = [int(f.stem) if f.stem.isdigit() else None for f in files]
        if None not in stems and len(set(stems)) == len(stems):
            self._ids = {str(f): i for f, i in zip(files, stems)}
        else:
            self.mapping = {str(f): n for n, f in enumerate(files, start=1)}
            self._ids = dict(self.mapping)

    def image_id(self, path: Path) -> int | str:
        """The id of ``path``; a ValueError (for this file only) when ``--ann`` does not list it."""
        if not self.ann:
            return self._ids[str(path)]  # type: ignore[return-value]
        if path.name not in self._ids:
            raise ValueError(f"{path}: not among the images of {self.ann}")
        found = self._ids[path.name]
        if found is None:
            raise ValueError(f"{path}: two images of {self.ann} have this file name, so its id is ambiguous")
        return found


def _unique(out: Path, stem: str, suffix: str, used: set[str], *also: str) -> Path:
    """``OUT/<stem><suffix>``, or ``<stem>_2<suffix>`` ... when a name (with each of ``also``'s
    suffixes) is taken by another output of this run."""
    name, i = stem, 1
    while any(name + x in used for x in (suffix, *also)):
        i += 1
        name = f"{stem}_{i}"
    used.update(name + x for x in (suffix, *also))
    return out / (name + suffix)


class _Plan:
    """Every file this run may write, named before any inference, so that a name that would
    replace one of the run's inputs is refused up front (:meth:`check`)."""

    def __init__(
        self, out: Path, images: list[Path], videos: list[Path | int], sequence: str, *, track: bool
    ) -> None:
        used: set[str] = {"results.json", "image_ids.json", ".litepose.lock"}
        self.overlay = {p: _unique(out, p.stem, ".jpg", used) for p in images}
        self.video: dict[Path | int, tuple[Path, Path]] = {}
        for v in videos:
            mp4 = _unique(out, f"webcam{v}" if isinstance(v, int) else v.stem, ".mp4", used, ".jsonl")
            self.video[v] = (mp4, mp4.with_suffix(".jsonl"))
        self.sequence = _unique(out, sequence, ".jsonl", used) if track and images else None
        self.fixed = [out / "results.json", out / "image_ids.json"]

    def files(self) -> list[Path]:
        found = list(self.overlay.values()) + [f for pair in self.video.values() for f in pair] + self.fixed
        return found + ([self.sequence] if self.sequence else [])

    def check(self, inputs: list[Path], flag: str = "--output") -> None:
        """Refuse (ValueError, before any work) an output that is one of ``inputs``, symlinks
        followed: ``predict DIR --output DIR`` must never write an overlay over a photo."""
        from ..files import refuse_clashes

        refuse_clashes(self.files(), inputs, flag)


class _Display:
    """cv2.imshow when a display exists; otherwise says so once."""

    def __init__(self, wanted: bool) -> None:
        self.on = False
        if not wanted:
            return
        import cv2

        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            reason = "no display ($DISPLAY is not set)"
        else:
            try:
                cv2.namedWindow("litepose", cv2.WINDOW_NORMAL)
                self.on = True
                return
            except cv2.error:
                reason = "this OpenCV build has no GUI support (opencv-python-headless)"
        print(f"--show: {reason}; results are only written to the output folder", file=sys.stderr)

    def show(self, rgb: Any) -> bool:
        """Show a frame, with the frame rate over the last second; False when the user pressed q / Esc."""
        if not self.on:
            return True
        import cv2

        now = time.monotonic()
        self._times = [t for t in getattr(self, "_times", []) if now - t < 1.0] + [now]
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if len(self._times) > 1:
            fps = (len(self._times) - 1) / max(self._times[-1] - self._times[0], 1e-6)
            scale = max(0.5, bgr.shape[0] / 720)
            cv2.putText(bgr, f"{fps:.1f} FPS", (10, int(30 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale,
                        (0, 255, 0), max(1, int(2 * scale)), cv2.LINE_AA)  # fmt: skip
        cv2.imshow("litepose", bgr)
        return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)

    def close(self) -> None:
        if self.on:
            import cv2

            cv2.destroyAllWindows()


# -- main ----------------------------------------------------------------------------------------


#: How often (seconds, at least) results.json is rewritten while a run goes on; a rewrite also
#: waits 20 times as long as the last one took, so that large result sets cost little.
SAVE_EVERY_S = 10.0


def _item_error(e: BaseException) -> bool:
    """Whether ``e`` is the failure of one input (unreadable, too large, out of memory) rather than
    of the run: such an input is reported and skipped."""
    import cv2

    if isinstance(e, ValueError | OSError | MemoryError | cv2.error):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _reason(e: BaseException, name: str) -> str:
    """Why input ``name`` was skipped, in one line (without the name the message may start with)."""
    from ..errors import describe

    text = describe(e)
    if isinstance(e, MemoryError | RuntimeError) and "out of memory" not in text:
        text = f"out of memory ({text})"
    return text.removeprefix(f"{name}: ")


class _Run:
    """One predict run: the predictor, where its files go, and what it has done so far."""

    def __init__(self, args: argparse.Namespace, predictor: Any, ids: _Ids | None, out: Path, plan: _Plan) -> None:
        from ..viz import draw_people
        from ._options import build_tracker

        self.args = args
        self.predictor = predictor
        self.ids = ids
        self.frame = "stored" if args.ann else "upright"  # the annotations' frame when scoring against them
        self.out = out
        self.plan = plan
        self.display = _Display(args.show)
        self.results: list[dict[str, Any]] = []
        self.skipped: list[tuple[str, str]] = []
        self.images = self.frames = self.people = 0
        self._draw_people = draw_people
        self._saved_at = time.monotonic()
        self._save_cost = 0.0
        self.results_json: Path | None = None
        self.ids_json: Path | None = None
        # --track: a tracker per video; images are the frames of one sequence, written to <sequence>.jsonl
        self._tracker = lambda fps: build_tracker(args, predictor.keypoints, fps)
        self.tracker = self._tracker(30.0)
        self.sequence_lines: Any = None
        self.sequence_jsonl: Path | None = None
        self.tracks = 0

    def draw(self, rgb: Any, people: list[dict[str, Any]]) -> Any:
        return self._draw_people(
            rgb, people, self.predictor.keypoints, self.args.kpt_threshold, min_score=self.args.min_score
        )

    def skip(self, name: str, e: BaseException) -> None:
        self.skipped.append((name, _reason(e, name)))

    def image(self, path: Path) -> bool:
        """Predict one image file: overlay, COCO results; False when the user asked to stop. A
        failure of this image (read, size, memory, id) skips it (:func:`_item_error`)."""
        from ..media import image_header, read_image, write_image

        try:
            image_id = self.ids.image_id(path) if self.ids is not None else None
            rgb = read_image(path, frame=self.frame)
            people = self.predictor(rgb)
            if self.tracker is not None:
                people = self.tracker.update(people)
            overlay = self.draw(rgb, people)
        except Exception as e:
            if not _item_error(e):
                raise
            self.skip(str(path), e)
            return True
        self.images += 1
        self.people += len(people)
        if self.tracker is not None:
            self.frame_line(path, people)
        write_image(self.plan.overlay[path], overlay)
        if self.ids is not None:
            turned = self.frame == "upright" and (image_header(path, orientation=True) or (0, 0, 1))[2] != 1
            for p in people:
                flat = [round(float(v), 3) for v in p["keypoints"].reshape(-1)]
                r = {"image_id": image_id, "category_id": self.ids.category, "keypoints": flat,
                     "score": float(p["score"]), "file_name": path.name}  # fmt: skip
                if turned:  # these coordinates are not in the stored frame that annotations use
                    r["frame"] = "upright"
                self.results.append(r)
            self.save(final=False)
        return self.display.show(overlay)

    def frame_line(self, path: Path, people: list[dict[str, Any]]) -> None:
        """--track on images: one JSON line for this frame in OUT/<sequence>.jsonl."""
        if self.sequence_lines is None:
            self.sequence_jsonl = self.plan.sequence
            self.sequence_lines = open(self.sequence_jsonl, "w", buffering=1)  # line by line: a kill keeps each
        line = {"frame": self.images - 1, "file_name": path.name, "people": [_person_json(p) for p in people]}
        self.sequence_lines.write(json.dumps(line) + "\n")

    def close_sequence(self) -> None:
        if self.sequence_lines is not None:
            self.sequence_lines.close()
            self.sequence_lines = None
        if self.tracker is not None:
            self.tracks += self.tracker.born

    def video(self, video: Path | int) -> bool:
        """Predict every frame of a video (or a webcam until interrupted): OUT/<name>.mp4 and .jsonl.
        False when the user asked to stop. A frame that fails is reported and skipped; a file with
        fewer frames than it says it holds gets a warning."""
        from tqdm import tqdm

        from ..files import shown
        from ..interrupt import stop_requested
        from ..media import MediaError, VideoReader, VideoWriter

        webcam = isinstance(video, int)
        name = f"webcam{video}" if webcam else shown(video.stem)
        label = f"webcam {video}" if webcam else shown(video)
        try:
            reader = VideoReader(video, latest=webcam)
        except MediaError as e:
            self.skip(label, e)
            return True
        tracker = self._tracker(reader.fps)
        start = time.monotonic()
        mp4, jsonl = self.plan.video[video]
        frames, go_on, complete = 0, True, False
        bar = tqdm(reader, desc=name, unit="frame", total=reader.frame_count, file=sys.stderr)
        try:
            with VideoWriter(mp4, reader.fps) as writer, open(jsonl, "w", buffering=1) as lines:
                for n, rgb in enumerate(bar):
                    try:
                        people = self.predictor(rgb)
                        if tracker is not None:  # a webcam's clock is real time (frames may be dropped)
                            people = tracker.update(people, time.monotonic() - start if webcam else n / reader.fps)
                        overlay = self.draw(rgb, people)
                    except Exception as e:
                        if not _item_error(e):
                            raise
                        self.skip(f"{label} frame {n}", e)
                        continue
                    lines.write(json.dumps({"frame": n, "people": [_person_json(p) for p in people]}) + "\n")
                    writer.write(overlay)
                    frames += 1
                    self.people += len(people)
                    if not self.display.show(overlay) or stop_requested():
                        go_on = False
                        break
                else:
                    complete = True
        except KeyboardInterrupt:  # a webcam runs until interrupted; a file's frames so far are kept
            if not webcam:
                raise
        finally:
            bar.close()
            self.frames += frames
            self.tracks += tracker.born if tracker is not None else 0
            if webcam and reader.dropped:
                print(f"{label}: {reader.dropped} frame(s) dropped to keep up with the camera", file=sys.stderr)
            if frames == 0:
                self.skipped.append((label, "no frame could be decoded"))
                mp4.unlink(missing_ok=True)
                jsonl.unlink(missing_ok=True)
        if complete and reader.frame_count and reader.decoded < reader.frame_count:
            print(
                f"warning: {label}: {reader.decoded} of the {reader.frame_count} frames it holds could be decoded "
                "(a truncated or corrupt file); the output has those frames",
                file=sys.stderr,
            )
        return go_on

    def save(self, *, final: bool) -> None:
        """Write results.json (and image_ids.json) atomically: now when ``final``, else when the
        last write is old enough (:data:`SAVE_EVERY_S`)."""
        from ..data.jsonio import write_json

        if not (self.args.save_json and self.ids is not None and self.images):
            return
        now = time.monotonic()
        if not final and now - self._saved_at < max(SAVE_EVERY_S, 20 * self._save_cost):
            return
        if self.ids.mapping is not None and self.ids_json is None:
            self.ids_json = write_json(self.out / "image_ids.json", self.ids.mapping, indent=1)
        self.results_json = write_json(self.out / "results.json", self.results)
        self._saved_at = time.monotonic()
        self._save_cost = self._saved_at - now

    def report_skipped(self) -> None:
        from ..files import shown

        for name, reason in self.skipped:
            print(f"skipped {shown(name)}: {shown(reason)}", file=sys.stderr)

    def _wrap_up(self) -> None:
        """The end of every run, finished or stopped: window closed, open sequence written,
        results.json saved, skipped inputs reported."""
        self.display.close()
        self.close_sequence()
        self.save(final=True)
        self.report_skipped()

    def interrupted(self) -> None:
        """A second signal (or an error) stopped the run mid-item: keep and say what was done."""
        self._wrap_up()
        print(self._stopped_line(), file=sys.stderr)

    def _stopped_line(self) -> str:
        from ..files import shown
        from ..interrupt import stopped_by

        kept = f"; results so far in {shown(self.results_json)}" if self.results_json else ""
        done = f"{self.images} image(s), {self.frames} video frame(s)"
        return f"interrupted by {stopped_by()}: stopped after {done}{kept}"

    def finish(self) -> int:
        """Write results.json, report the skipped inputs and the summary; the exit code (128 + the
        signal's number when a signal stopped the run between items)."""
        from ..files import shown
        from ..interrupt import exit_code, stop_requested, stopped_by

        self._wrap_up()
        t = self.predictor.timings.per_image()
        summary = {
            "images": self.images,
            "video_frames": self.frames,
            "people": self.people,
            "output": shown(self.out),
            "results_json": shown(self.results_json) if self.results_json else None,
            "image_ids_json": shown(self.ids_json) if self.ids_json else None,
            "frame": self.frame,
            "skipped": [{"source": n, "reason": r} for n, r in self.skipped],
            "ms_per_image": {k: round(v, 2) for k, v in t.items()},
        }
        if self.args.track:
            summary["tracks"] = self.tracks
            summary["frames_jsonl"] = shown(self.sequence_jsonl) if self.sequence_jsonl else None
        from ._options import emit

        if stop_requested():  # a signal between items: what was done is written, and said
            summary["stopped"] = stopped_by()
            print(self._stopped_line(), file=sys.stderr)
            emit(self.args, summary, None)
            return exit_code()
        if self.images + self.frames == 0:
            print("litepose predict: nothing could be processed", file=sys.stderr)
            emit(self.args, summary, None)
            return 1
        what = ", ".join(
            s
            for s in (
                f"{self.images} image(s)" if self.images else "",
                f"{self.frames} video frame(s)" if self.frames else "",
            )
            if s
        )
        emit(
            self.args,
            summary,
            f"{what}, {self.people} people; {t['total']:.1f} ms per image "
            f"(preprocess {t['preprocess']:.1f}, network {t['network']:.1f}, decode {t['decode']:.1f}); "
            f"results in {shown(self.out)}" + (f"; {len(self.skipped)} skipped" if self.skipped else ""),
        )
        return 0


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..files import FolderLock
    from ..interrupt import graceful, stop_requested
    from ._options import build_predictor, check_fraction, output_folder

    check_fraction("--kpt-threshold", args.kpt_threshold)
    check_fraction("--min-score", args.min_score)
    images, videos, skipped = _resolve_source(args.source)
    out = output_folder(args.output, make=False)
    sequence = Path(args.source).name if Path(args.source).is_dir() else "frames"
    plan = _Plan(out, images, videos, sequence, track=args.track)
    inputs = images + [v for v in videos if not isinstance(v, int)]
    plan.check(inputs + [Path(f) for f in (args.ann, args.weights) if f])  # before any work
    predictor = build_predictor(args)
    ids = _Ids(args.ann, images, predictor.num_joints) if (args.ann or args.save_json) else None
    output_folder(out)
    with FolderLock(out, "litepose predict"), graceful():
        job = _Run(args, predictor, ids, out, plan)
        job.skipped.extend(skipped)
        try:
            go_on = True
            for path in tqdm(images, desc="images", unit="img", disable=len(images) < 2, file=sys.stderr):
                if not job.image(path) or stop_requested():
                    go_on = False
                    break
            for video in videos if go_on else []:
                if not job.video(video) or stop_requested():
                    break
        except BaseException:  # a second signal, or an error that stops the run: what was done is written first
            job.interrupted()
            raise
        return job.finish()
