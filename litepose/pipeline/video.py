"""One video, camera or live stream through a :class:`~litepose.pipeline.Stream`: its frames
predicted (and tracked), OUT/<name>.jsonl written as they come, OUT/<name>.mp4 drawn and encoded
behind by a thread (:class:`~.sinks.OverlayVideo`), a file's frames decoded ahead by another
(:class:`~.workers.Ahead`), so that the calling thread only predicts.

A frame that fails is recorded and skipped; a file with fewer frames than it says it holds gets a
warning; a camera or a live stream is read newest-frame-first on a real-time clock and runs until
stopped. The stage milliseconds go to the stream's ``video_times``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .result import FrameResult

__all__ = ["VideoPass"]


class VideoPass:
    """The frames of one video of ``run`` (a :class:`~litepose.pipeline.Stream`), once."""

    def __init__(self, run: Any, video: Path | int | str, reader: Any, name: str, label: str) -> None:
        self.run, self.video, self.reader, self.name, self.label = run, video, reader, name, label
        #: a camera or a live stream: the newest frame, its clock real time; a file: every frame
        self.live = isinstance(video, int) or reader.live
        reader.latest = self.live
        self.tracker = run._new_tracker(reader.fps)
        self.mp4, self.jsonl = run.plan.video[video] if run.plan is not None else (None, None)
        self.frames = 0
        self.overlays: Any = None
        self.lines: Any = None

    @classmethod
    def open(cls, run: Any, video: Path | int | str) -> VideoPass | None:
        """The pass over ``video``, or None when it cannot be opened (recorded as skipped)."""
        from ..files import shown
        from ..media import MediaError, VideoReader, shown_url
        from .sources import stream_name

        if isinstance(video, str):
            name, label = stream_name(video), shown(shown_url(video))
        elif isinstance(video, int):
            name, label = f"webcam{video}", f"webcam {video}"
        else:
            name, label = shown(video.stem), shown(video)
        try:
            reader = run.sources.opened.pop(video) if video in run.sources.opened else VideoReader(video)
        except MediaError as e:
            run._skip(label, e)
            return None
        return cls(run, video, reader, name, label)

    def __iter__(self) -> Iterator[FrameResult]:
        """Every frame's result; returns (``yield from``) False when the user or a signal asked to stop."""
        from tqdm import tqdm

        from ..interrupt import stop_requested
        from .workers import Ahead

        run, settings = self.run, self.run.settings
        # a camera's reader keeps only its newest frame itself: reading further ahead would add delay
        source: Any = self.reader if self.live else Ahead(self.reader, depth=4, name="litepose-read")
        bar = tqdm(source, desc=self.name, unit="frame", total=self.reader.frame_count, file=sys.stderr,
                   disable=not settings["progress"])  # fmt: skip
        go_on, complete, aborted = True, False, False
        self.start, wall = time.monotonic(), time.perf_counter()
        waited = wall
        try:
            self._open_writers()  # inside: the bar closes on error
            for n, item in enumerate(bar):
                rgb, read_ms = item if not self.live else (item, (time.perf_counter() - waited) * 1000.0)
                frame = self._frame(n, rgb, read_ms)
                if frame is None:
                    waited = time.perf_counter()
                    continue
                result, shown_bgr = frame
                yield result
                if (shown_bgr is not None and not run.display.show(shown_bgr, bgr=True)) or stop_requested():
                    go_on = False
                    break
                waited = time.perf_counter()
            else:
                complete = True
        except KeyboardInterrupt:  # a camera runs until interrupted; a file's frames so far are kept
            aborted = not self.live  # a second signal: the overlay writer stops after its current frame
            if not self.live:
                raise
        finally:
            bar.close()
            if isinstance(source, Ahead):
                source.close()
            self._close(aborted, time.perf_counter() - wall)
        if complete and self.reader.frame_count and self.reader.decoded < self.reader.frame_count:
            print(f"warning: {self.label}: {self.reader.decoded} of the {self.reader.frame_count} frames it holds "
                  "could be decoded (a truncated or corrupt file); the output has those frames",
                  file=sys.stderr)  # fmt: skip
        return go_on

    def _open_writers(self) -> None:
        from .sinks import OverlayVideo

        settings = self.run.settings
        self.lines = open(self.jsonl, "w", buffering=1) if self.jsonl is not None else None
        if self.mp4 is not None and settings["overlays"] and settings["save_video"]:
            self.overlays = OverlayVideo(
                self.mp4, self.reader.fps, self.run.video_times,
                kpt_threshold=settings["kpt_threshold"], min_score=settings["min_score"],
            )  # fmt: skip

    def _frame(self, n: int, rgb: Any, read_ms: float) -> tuple[FrameResult, Any] | None:
        """Frame ``n`` predicted, tracked, written and counted, with its drawing for the window;
        None when it failed (recorded and skipped)."""
        from .runner import _item_error

        run, settings, times = self.run, self.run.settings, self.run.video_times
        try:
            people = run.predictor(rgb)
            if self.tracker is not None:  # a camera's clock is real time (frames may be dropped)
                clock = time.monotonic() - self.start if self.live else n / self.reader.fps
                people = self.tracker.update(people, clock)
            result = FrameResult(self.label, n, rgb, people, run.keypoint_set, None,
                                 {"read": read_ms, **run.predictor.timings.last})  # fmt: skip
            shown_bgr = None
            if run.display.on:  # drawn here: the window is this thread's
                drawn = time.perf_counter()
                shown_bgr = result.draw_bgr(settings["kpt_threshold"], settings["min_score"])
                times.add("draw", (time.perf_counter() - drawn) * 1000.0)
        except Exception as e:
            if not _item_error(e):
                raise
            run._skip(f"{self.label} frame {n}", e)
            return None
        if self.lines is not None:
            self.lines.write(json.dumps({"frame": n, "people": result.json_line()["people"]}) + "\n")
        if self.overlays is not None:
            self.overlays.put(result, shown_bgr)
        self.frames += 1
        run.frames += 1
        run.people += len(people)
        times.frame(result.timings)
        return result, shown_bgr

    def _close(self, aborted: bool, seconds: float) -> None:
        """Close the writers (a playable video, whole lines) and say what happened to the source."""
        run, reader, label = self.run, self.reader, self.label
        try:
            if self.overlays is not None:
                self.overlays.close(abort=aborted or self.frames == 0)
        finally:
            run.video_times.seconds += seconds
            if self.lines is not None:
                self.lines.close()
            run.tracks += self.tracker.born if self.tracker is not None else 0
            if self.live and reader.dropped:
                print(f"{label}: {reader.dropped} frame(s) dropped to keep up with the source", file=sys.stderr)
            if reader.reconnects:
                print(f"{label}: the stream was lost and reopened {reader.reconnects} time(s)", file=sys.stderr)
            if reader.lost:
                print(f"warning: {label}: the stream was lost and could not be reopened ({reader.retries} "
                      f"tries); the output has the {self.frames} frame(s) before", file=sys.stderr)  # fmt: skip
            if self.frames == 0:
                run.skipped.append((label, "no frame could be decoded"))
                for f in (self.mp4, self.jsonl):
                    if f is not None:
                        f.unlink(missing_ok=True)
