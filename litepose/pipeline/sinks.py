"""Where results go: overlays, videos, JSON lines, COCO results.json, a window.

:class:`OutputPlan` names every file a run will write before any inference, so that a name that
would replace an input is refused up front; :class:`ImageIds` gives COCO image ids;
:class:`CocoResults` keeps results.json current; :class:`Display` shows frames;
:class:`OverlayVideo` draws and encodes a video's overlays in a thread of its own.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["CocoResults", "Display", "ImageIds", "OutputPlan", "OverlayVideo"]


def _unique(out: Path, stem: str, suffix: str, used: set[str], *also: str) -> Path:
    """``OUT/<stem><suffix>``, or ``<stem>_2<suffix>`` ... when a name (with each of ``also``'s
    suffixes) is taken by another output of this run."""
    name, i = stem, 1
    while any(name + x in used for x in (suffix, *also)):
        i += 1
        name = f"{stem}_{i}"
    used.update(name + x for x in (suffix, *also))
    return out / (name + suffix)


class OutputPlan:
    """Every file a run may write in ``out``: an overlay ``<stem>.jpg`` per image, ``<stem>.mp4``
    and ``<stem>.jsonl`` per video (a stream's name: :func:`~.sources.stream_name`),
    ``<sequence>.jsonl`` for tracked images, results.json and image_ids.json; names made unique
    within the run (``<stem>_2.jpg``)."""

    def __init__(self, out: Path, images: list[Path], videos: list[Any], sequence: str, *, track: bool):
        from ..files import LOCK_NAME

        self.out = out
        used: set[str] = {"results.json", "image_ids.json", LOCK_NAME}
        self.overlay = {p: _unique(out, p.stem, ".jpg", used) for p in images}
        from .sources import stream_name

        self.video: dict[Path | int | str, tuple[Path, Path]] = {}
        for v in videos:
            stem = f"webcam{v}" if isinstance(v, int) else stream_name(v) if isinstance(v, str) else v.stem
            mp4 = _unique(out, stem, ".mp4", used, ".jsonl")
            self.video[v] = (mp4, mp4.with_suffix(".jsonl"))
        self.sequence = _unique(out, sequence, ".jsonl", used) if track and images else None
        self.results = out / "results.json"
        self.image_ids = out / "image_ids.json"

    def files(self) -> list[Path]:
        found = list(self.overlay.values()) + [f for pair in self.video.values() for f in pair]
        return found + [self.results, self.image_ids] + ([self.sequence] if self.sequence else [])

    def check(self, inputs: list[Path], what: str = "output") -> None:
        """Refuse (ValueError, before any work) a planned file that is one of ``inputs``, symlinks
        followed: predicting a folder into itself must never write an overlay over a photo."""
        from ..files import refuse_clashes

        refuse_clashes(self.files(), inputs, what)


class ImageIds:
    """COCO ``image_id`` and ``category_id`` of each image file.

    With annotations (``ann``): the id their ``images`` give the file's name (a name two of them
    share is ambiguous: an error for that file only). Otherwise every file's numeric stem when all
    have one and no two are equal (COCO's ``000000000139.jpg`` -> 139), else a running index 1..N
    over all files, kept in :attr:`mapping` (written to image_ids.json)."""

    def __init__(self, ann: str | Path | None, files: list[Path], num_joints: int) -> None:
        self.ann = ann
        self.category = 1
        self._ids: dict[str, int | str | None] = {}
        self.mapping: dict[str, int] | None = None
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
        """The id of ``path``; a ValueError (for this file only) when the annotations lack it."""
        if not self.ann:
            return self._ids[str(path)]  # type: ignore[return-value]
        if path.name not in self._ids:
            raise ValueError(f"{path}: not among the images of {self.ann}")
        found = self._ids[path.name]
        if found is None:
            raise ValueError(f"{path}: two images of {self.ann} have this file name, so its id is ambiguous")
        return found


#: How often (seconds, at least) results.json is rewritten while a run goes on; a rewrite also
#: waits 20 times as long as the last one took, so that large result sets cost little.
SAVE_EVERY_S = 10.0


class CocoResults:
    """COCO keypoint results, written whole and atomically to ``path`` every :data:`SAVE_EVERY_S`
    seconds (so it is always valid JSON) and on :meth:`save` ``final``; with a running index, the
    file -> id mapping goes to ``ids_path`` once."""

    def __init__(self, path: Path, ids: ImageIds, ids_path: Path) -> None:
        self.path, self.ids, self.ids_path = path, ids, ids_path
        self.results: list[dict[str, Any]] = []
        self.written: Path | None = None
        self.ids_written: Path | None = None
        self._saved_at = time.monotonic()
        self._cost = 0.0

    def add(self, results: list[dict[str, Any]]) -> None:
        self.results.extend(results)
        self.save(final=False)

    def save(self, *, final: bool) -> None:
        from ..data.jsonio import write_json

        now = time.monotonic()
        if not final and now - self._saved_at < max(SAVE_EVERY_S, 20 * self._cost):
            return
        if self.ids.mapping is not None and self.ids_written is None:
            self.ids_written = write_json(self.ids_path, self.ids.mapping, indent=1)
        self.written = write_json(self.path, self.results)
        self._saved_at = time.monotonic()
        self._cost = self._saved_at - now


class Display:
    """A window (``cv2.imshow``) showing each overlay with the frame rate, when a display exists;
    otherwise it says so once and shows nothing."""

    def __init__(self, wanted: bool, label: str = "show") -> None:
        self.on = False
        self._times: list[float] = []
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
        print(f"{label}: {reason}; results are only written to the output folder", file=sys.stderr)

    def show(self, image: Any, *, bgr: bool = False) -> bool:
        """Show a frame (RGB, or ``bgr``: OpenCV's order, shown as is) with the frame rate over the
        last second; False when the user pressed q / Esc."""
        if not self.on:
            return True
        import cv2

        now = time.monotonic()
        self._times = [t for t in self._times if now - t < 1.0] + [now]
        bgr = image.copy() if bgr else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)  # the rate is drawn on a copy
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


class OverlayVideo:
    """A video's overlays (``OUT/<stem>.mp4``), drawn and encoded in a thread behind the frame
    loop (:class:`~litepose.pipeline.workers.Behind`), in order; the milliseconds of each go to
    ``times`` (a :class:`~litepose.pipeline.result.StageTimes`) as ``draw`` and ``write``.

    :meth:`put` takes a frame's result (drawn in the thread) or its overlay already drawn (BGR, for
    a frame also shown in a window). :meth:`close` finishes the queued frames and gives the file
    its name (a playable video of every frame put), or with ``abort`` (a second signal) stops after
    the current frame and keeps what was written; a video of no frame is not kept."""

    def __init__(self, path: Path, fps: float, times: Any, *, kpt_threshold: float, min_score: float,
                 depth: int = 4) -> None:  # fmt: skip
        from ..media import VideoWriter
        from .workers import Behind

        self.writer = VideoWriter(path, fps)
        self.times = times
        self.settings = (kpt_threshold, min_score)
        self._behind = Behind(self._write, depth=depth, name="litepose-overlay")

    def _write(self, item: Any) -> None:
        result, bgr = item
        if bgr is None:
            start = time.perf_counter()
            bgr = result.draw_bgr(*self.settings)
            self.times.add("draw", (time.perf_counter() - start) * 1000.0)
        start = time.perf_counter()
        self.writer.write_bgr(bgr)
        self.times.add("write", (time.perf_counter() - start) * 1000.0)

    def put(self, result: Any, bgr: Any = None) -> None:
        """Queue a frame; raises an error of the writing thread (a full disk, an encoder that failed)."""
        self._behind.put((result, bgr))

    def close(self, *, abort: bool = False) -> None:
        """Finish (or with ``abort``, stop after the current frame), then name the file, or remove
        it when it holds no frame."""
        try:
            if abort:
                self._behind.abort()
            else:
                self._behind.finish()
        finally:
            self.writer.close() if self.writer.frames else self.writer.discard()
