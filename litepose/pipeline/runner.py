"""The library's runner: a source in, one :class:`FrameResult` per image or video frame out, with
the optional tracker and the sinks (overlays, videos, JSON lines, results.json, a window).

``litepose predict`` is this runner plus option parsing::

    import litepose
    with litepose.stream("clip.mp4", "litepose-xs-coco", track=True, output="runs/clip") as frames:
        for r in frames:                      # FrameResult: r.keypoints (N, K, 3), r.track_ids, r.timings
            print(r.index, len(r.people), r.track_ids)
    print(frames.summary())                   # counts, files written, per-stage milliseconds

Each input is handled on its own: an image or frame that fails (unreadable, too large, out of
memory, not in ``ann``) is recorded in :attr:`Stream.skipped` with the reason, and the run goes
on. Under the command line's stop policy (:mod:`litepose.interrupt`) a signal finishes the
current image or frame, closes every writer (a playable video, whole JSON lines, results.json)
and ends the iteration; :attr:`Stream.stopped` names the signal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .result import FrameResult, StageTimes
from .sinks import CocoResults, Display, ImageIds, OutputPlan
from .sources import resolve_source

__all__ = ["Stream", "plan_outputs", "stream"]


def _item_error(e: BaseException) -> bool:
    """Whether ``e`` is the failure of one input (unreadable, too large, out of memory) rather than
    of the run: such an input is recorded and skipped."""
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


class Stream:
    """One run of a predictor over a source (see the module docstring; made by :func:`stream`).

    Everything that can be checked is checked when it is made, before any inference: the source
    exists, no output would replace an input, and the output folder is not in use by another run
    (it is held until :meth:`close`)."""

    def __init__(
        self,
        source: str | Path | int,
        predictor: Any,
        *,
        output: str | Path | None = None,
        track: bool = False,
        tracker: Any = None,
        smooth: Any = None,
        save_json: bool = False,
        ann: str | Path | None = None,
        overlays: bool = True,
        save_video: bool = True,
        show: bool = False,
        kpt_threshold: float = 0.1,
        min_score: float = 0.2,
        progress: bool = True,
        inputs: tuple[str | Path, ...] = (),
        show_label: str = "show",
        owner: str = "litepose stream",
    ) -> None:
        from ..files import FolderLock
        from ..predictor import Predictor

        self.sources = resolve_source(source)
        self.out = Path(output) if output is not None else None
        self.track = bool(track or tracker is not None or smooth)
        self.plan = plan_outputs(self.sources, self.out, track=self.track, inputs=(ann, *inputs))
        self.sources.open_streams()  # a stream that cannot be reached: an error now, before any work
        self.predictor = predictor if isinstance(predictor, Predictor) else Predictor(predictor)
        self.keypoint_set = self.predictor.keypoints
        self.frame = "stored" if ann else "upright"  # the annotations' frame when scoring against them
        self.ids = ImageIds(ann, self.sources.images, self.predictor.num_joints) if (ann or save_json) else None
        self.tracker_config, self.smoothing = tracker, smooth
        self.settings = {"overlays": overlays, "save_video": save_video, "kpt_threshold": kpt_threshold,
                         "min_score": min_score, "progress": progress}  # fmt: skip
        self.skipped: list[tuple[str, str]] = list(self.sources.skipped)
        self.images = self.frames = self.people = self.tracks = 0
        #: per-stage milliseconds of video frames, frames per second (:meth:`summary`'s ``video``)
        self.video_times = StageTimes()
        self.stopped: str | None = None
        self.coco: CocoResults | None = None
        self._lock = None
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            self._lock = FolderLock(self.out, owner).acquire()
            if save_json and self.ids is not None:
                self.coco = CocoResults(self.plan.results, self.ids, self.plan.image_ids)
        self.display = Display(show, show_label)
        self._sequence_lines: Any = None
        self.sequence_jsonl: Path | None = None
        self._closed = False

    # -- pieces ------------------------------------------------------------------------------------------

    def _new_tracker(self, fps: float) -> Any:
        if not self.track:
            return None
        from ..track import OneEuroConfig, Tracker

        smooth = OneEuroConfig() if self.smoothing is True else (self.smoothing or None)
        return Tracker(self.keypoint_set, self.tracker_config, smooth=smooth, fps=fps)

    def _overlay(self, result: FrameResult) -> Any:
        return result.draw(self.settings["kpt_threshold"], self.settings["min_score"])

    def _skip(self, name: str, e: BaseException) -> None:
        self.skipped.append((name, _reason(e, name)))

    # -- iteration ---------------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[FrameResult]:
        from ..interrupt import graceful, stop_requested, stopped_by

        try:
            with graceful():
                go_on = yield from self._images()
                for video in self.sources.videos if go_on else []:
                    if not (yield from self._video(video)):
                        break
            if stop_requested():
                self.stopped = stopped_by()
        except BaseException as e:  # a second signal, an error, or the caller's break: what was done is written
            if isinstance(e, KeyboardInterrupt):
                self.stopped = stopped_by()
            self.close()
            raise
        self.close()

    def _images(self) -> Iterator[FrameResult]:
        """Every image file; returns False when the user or a signal asked to stop."""
        from tqdm import tqdm

        from ..interrupt import stop_requested

        tracker = self._new_tracker(30.0)
        quiet = not self.settings["progress"] or len(self.sources.images) < 2
        try:
            for path in tqdm(self.sources.images, desc="images", unit="img", disable=quiet, file=sys.stderr):
                done = self._image(path, tracker)
                if done is not None:
                    result, image_id, overlay = done
                    go_on = self._after_image(result, image_id, overlay)
                    yield result
                    if not go_on:
                        return False
                if stop_requested():
                    return False
        finally:
            self.tracks += tracker.born if tracker is not None else 0
        return True

    def _image(self, path: Path, tracker: Any) -> tuple[FrameResult, Any, Any] | None:
        """Predict one image file: (result, its image id, its overlay); None when it failed
        (recorded in :attr:`skipped`)."""
        from ..media import read_image

        try:
            image_id = self.ids.image_id(path) if self.ids is not None else None
            rgb = read_image(path, frame=self.frame)
            people = self.predictor(rgb)
            if tracker is not None:
                people = tracker.update(people)
            result = FrameResult(str(path), self.images, rgb, people, self.keypoint_set, path,
                                 dict(self.predictor.timings.last))  # fmt: skip
            overlay = self._overlay(result) if self._needs_overlay() else None
        except Exception as e:
            if not _item_error(e):
                raise
            self._skip(str(path), e)
            return None
        self.images += 1
        self.people += len(people)
        return result, image_id, overlay

    def _needs_overlay(self) -> bool:
        return (self.out is not None and self.settings["overlays"]) or self.display.on

    def _after_image(self, result: FrameResult, image_id: Any, overlay: Any) -> bool:
        """Write what one image gives: its frame line (tracking), its overlay, its COCO results;
        False when the user closed the window."""
        from ..media import image_header, write_image

        path = result.path
        assert path is not None
        if self.plan is not None and self.track:
            if self._sequence_lines is None:
                self.sequence_jsonl = self.plan.sequence
                self._sequence_lines = open(self.sequence_jsonl, "w", buffering=1)  # line by line: a kill keeps each
            self._sequence_lines.write(json.dumps(result.json_line()) + "\n")
        if self.plan is not None and self.settings["overlays"]:
            write_image(self.plan.overlay[path], overlay)
        if self.coco is not None:
            turned = self.frame == "upright" and (image_header(path, orientation=True) or (0, 0, 1))[2] != 1
            self.coco.add(result.coco(image_id, self.ids.category, upright=turned))
        return self.display.show(overlay) if overlay is not None else True

    def _video(self, video: Path | int | str) -> Iterator[FrameResult]:
        """Every frame of a video (or of a camera or live stream until stopped), with OUT/<name>.mp4
        and .jsonl (:class:`~.video.VideoPass`). Returns False when the user or a signal asked to stop."""
        from .video import VideoPass

        one = VideoPass.open(self, video)
        if one is None:
            return True
        return (yield from one)

    # -- the end -----------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close every writer: the window, the frame lines, results.json (saved whole); release the
        output folder. Safe to call twice; a ``with`` block calls it."""
        if self._closed:
            return
        self._closed = True
        try:
            self.display.close()
            if self._sequence_lines is not None:
                self._sequence_lines.close()
                self._sequence_lines = None
            if self.coco is not None and self.images:
                self.coco.save(final=True)
        finally:
            self.sources.close_streams()
            if self._lock is not None:
                self._lock.release()

    def summary(self) -> dict[str, Any]:
        """Counts, files written and per-stage milliseconds (``litepose predict --json``'s keys)."""
        from ..files import shown

        t = self.predictor.timings.per_image()
        written = self.coco.written if self.coco is not None else None
        ids = self.coco.ids_written if self.coco is not None else None
        out = {
            "images": self.images,
            "video_frames": self.frames,
            "people": self.people,
            "output": shown(self.out) if self.out is not None else None,
            "results_json": shown(written) if written else None,
            "image_ids_json": shown(ids) if ids else None,
            "frame": self.frame,
            "skipped": [{"source": shown(n), "reason": shown(r)} for n, r in self.skipped],
            "ms_per_image": {k: round(v, 2) for k, v in t.items()},
        }
        if self.video_times.frames:
            out["video"] = self.video_times.summary()
        if self.track:
            out["tracks"] = self.tracks
            out["frames_jsonl"] = shown(self.sequence_jsonl) if self.sequence_jsonl else None
        if self.stopped:
            out["stopped"] = self.stopped
        return out

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def plan_outputs(
    sources: Any, output: str | Path | None, *, track: bool, inputs: tuple[str | Path | None, ...] = ()
) -> OutputPlan | None:
    """The files a run of ``sources`` (a source, or its :class:`Sources`) will write in ``output``,
    checked against its inputs (and the files ``inputs`` names): a ValueError, before any work,
    when one would replace another. None without an output folder."""
    if output is None:
        return None
    found = resolve_source(sources)
    plan = OutputPlan(Path(output), found.images, found.videos, found.sequence, track=track)
    plan.check(found.files() + [Path(f) for f in inputs if f])
    return plan


def stream(source: str | Path | int, predictor: Any, **options: Any) -> Stream:
    """Run ``predictor`` (a :class:`litepose.Predictor`, or a weights name, checkpoint or exported
    file to make one from) over ``source`` (an image, folder, glob, video file or webcam index):
    a :class:`Stream` to iterate, one :class:`FrameResult` per image or frame.

    Options: ``output`` (a folder: overlays ``<stem>.jpg``, per video ``<stem>.mp4`` and
    ``<stem>.jsonl``; none: nothing is written), ``track`` (stable ``track_id``s; ``tracker``: a
    :class:`litepose.TrackerConfig`, ``smooth``: True or a :class:`litepose.OneEuroConfig`),
    ``save_json`` (``results.json`` in COCO results format), ``ann`` (COCO annotations whose image
    ids results.json uses, read in their stored pixel frame), ``overlays`` (default True; False:
    none at all), ``save_video`` (default True; False: no overlay ``.mp4`` for videos, images keep
    theirs),
    ``show`` (a window), ``kpt_threshold`` and ``min_score`` (what is drawn), ``progress``."""
    return Stream(source, predictor, **options)
