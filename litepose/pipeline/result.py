"""One image's or video frame's people, as arrays, with where they came from and what they cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FrameResult", "StageTimes", "VIDEO_STAGES", "person_json", "speed_line"]

#: The stages of a video frame :class:`StageTimes` times, in order: reading (decoding the file),
#: the predictor's three, drawing the overlay and writing (encoding) it.
VIDEO_STAGES = ("read", "preprocess", "network", "decode", "draw", "write")
#: The predictor's stages: what "inference alone" costs.
INFERENCE_STAGES = ("preprocess", "network", "decode")


def person_json(p: dict[str, Any]) -> dict[str, Any]:
    """A person (as :class:`litepose.Predictor` or :class:`litepose.Tracker` gives it) as the JSON
    of a frame line: keypoints ``[[x, y, score], ...]``, ``score``, ``box``, and with tracking
    ``track_id`` (and ``predicted`` for a track's predicted pose that fills a missed frame)."""
    out = {
        "keypoints": [[round(float(x), 2), round(float(y), 2), round(float(s), 4)] for x, y, s in p["keypoints"]],
        "score": round(float(p["score"]), 5),
        "box": [round(float(v), 2) for v in p["box"]],
    }
    if "track_id" in p:
        out["track_id"] = p["track_id"]
    if p.get("predicted"):
        out["predicted"] = True
    return out


@dataclass
class FrameResult:
    """The people of one image (``path`` set) or one video / webcam frame (``index`` in it).

    ``people`` is what :class:`litepose.Predictor` returns (after the tracker, with ``track_id``);
    the properties give the same as arrays: ``keypoints`` (N, K, 3) in image pixels (x, y, score),
    ``boxes`` (N, 4), ``scores`` (N,), ``track_ids`` (N,) (-1: no id yet, or no tracking).
    ``timings``: this image's milliseconds per stage (preprocess, network, decode; and for a video
    frame ``read``, the time its decoding took).
    """

    source: str
    index: int
    image: np.ndarray
    people: list[dict[str, Any]]
    keypoint_set: Any
    path: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def keypoints(self) -> np.ndarray:
        k = self.keypoint_set.num_joints
        if not self.people:
            return np.zeros((0, k, 3), np.float32)
        return np.stack([np.asarray(p["keypoints"], np.float32)[:, :3] for p in self.people])

    @property
    def boxes(self) -> np.ndarray:
        return np.asarray([p["box"] for p in self.people], np.float32).reshape(-1, 4)

    @property
    def scores(self) -> np.ndarray:
        return np.asarray([p["score"] for p in self.people], np.float32)

    @property
    def track_ids(self) -> np.ndarray:
        ids = [p.get("track_id") for p in self.people]
        return np.asarray([-1 if i is None else int(i) for i in ids], np.int64)

    def draw(self, kpt_threshold: float = 0.1, min_score: float = 0.0) -> np.ndarray:
        """The image with each person's skeleton (in its track's colour when tracked), RGB."""
        from ..viz import draw_people

        return draw_people(self.image, self.people, self.keypoint_set, kpt_threshold, min_score=min_score)

    def draw_bgr(self, kpt_threshold: float = 0.1, min_score: float = 0.0) -> np.ndarray:
        """:meth:`draw` in OpenCV's channel order (what a video encoder or window takes): the one
        copy of the frame that the conversion makes is drawn on."""
        import cv2

        from ..viz import draw_people_into

        bgr = cv2.cvtColor(self.image, cv2.COLOR_RGB2BGR)
        return draw_people_into(bgr, self.people, self.keypoint_set, kpt_threshold, min_score=min_score, bgr=True)

    def json_line(self) -> dict[str, Any]:
        """This frame as one JSON line of ``litepose predict``: ``frame`` (the index), ``file_name``
        for an image, and ``people``."""
        line: dict[str, Any] = {"frame": self.index}
        if self.path is not None:
            line["file_name"] = self.path.name
        line["people"] = [person_json(p) for p in self.people]
        return line

    def coco(self, image_id: int | str, category_id: int = 1, *, upright: bool = False) -> list[dict[str, Any]]:
        """The people as COCO keypoint results; ``upright``: the image was turned by its EXIF
        orientation, so the coordinates are not in the stored frame annotations use (marked)."""
        out = []
        for p in self.people:
            r = {"image_id": image_id, "category_id": category_id,
                 "keypoints": [round(float(v), 3) for v in np.asarray(p["keypoints"]).reshape(-1)],
                 "score": float(p["score"])}  # fmt: skip
            if self.path is not None:
                r["file_name"] = self.path.name
            if upright:
                r["frame"] = "upright"
            out.append(r)
        return out


class StageTimes:
    """Milliseconds per video frame for each of :data:`VIDEO_STAGES`, and the frames and seconds of
    the video loops, for the figures ``litepose predict`` prints: frames per second end to end, the
    median of each stage, and the frame rate inference alone allows (1000 / the median of
    preprocess + network + decode), to compare the two. Stages run in separate threads (reading
    ahead, drawing and writing behind), so the stages' sum is more than a frame's share of the time.
    """

    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = {s: [] for s in VIDEO_STAGES}
        self.inference: list[float] = []
        self.frames = 0
        self.seconds = 0.0

    def add(self, stage: str, ms: float) -> None:
        self.ms[stage].append(float(ms))  # list.append: safe from the writer's thread

    def frame(self, timings: dict[str, float]) -> None:
        """One predicted frame's :attr:`FrameResult.timings`."""
        for s in ("read", *INFERENCE_STAGES):
            if s in timings:
                self.add(s, timings[s])
        self.inference.append(sum(float(timings.get(s, 0.0)) for s in INFERENCE_STAGES))
        self.frames += 1

    def summary(self) -> dict[str, Any]:
        """``frames``, ``seconds``, ``fps`` (end to end), ``inference_fps`` (what inference alone
        allows) and ``median_ms`` per stage (stages not run, e.g. draw and write without an overlay
        video, are left out)."""
        inference = float(np.median(self.inference)) if self.inference else 0.0
        return {
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "fps": round(self.frames / self.seconds, 2) if self.seconds > 0 else None,
            "inference_fps": round(1000.0 / inference, 2) if inference > 0 else None,
            "median_ms": {s: round(float(np.median(v)), 2) for s, v in self.ms.items() if v},
        }


def speed_line(video: dict) -> str:
    """A video summary (:meth:`StageTimes.summary`, ``Stream.summary()["video"]``) in words: frames
    per second end to end, what inference alone allows, and the median milliseconds of each stage."""
    stages = ", ".join(f"{k} {v:.1f}" for k, v in video["median_ms"].items())
    fps = f"{video['fps']:.1f}" if video["fps"] else "?"
    alone = f"{video['inference_fps']:.1f}" if video["inference_fps"] else "?"
    return f"{fps} frames/s end to end, inference alone allows {alone} (median ms per frame: {stages})"
