"""Reading images and videos robustly, and writing videos.

Everything returns RGB ``uint8`` arrays (H, W, 3): grayscale, RGBA (alpha dropped) and 16-bit
(scaled to 8 bits) images all work. Failures raise :class:`MediaError` naming the file and the
problem.

:func:`read_image` is litepose's one image reader, and every caller says which pixel frame it
wants, because both have a reason:

- ``frame="stored"``: the pixels as stored, EXIF orientation ignored. COCO-format annotations
  (COCO, CrowdPose, SynthPose, ...) give keypoints in this frame, so datasets, training and
  ``litepose val`` read images this way;
- ``frame="upright"``: turned upright by the EXIF orientation, as a photo is meant to be seen
  (and as phones store most of theirs). ``litepose predict`` reads a user's photos this way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "MediaError",
    "FRAMES",
    "to_rgb_uint8",
    "read_image",
    "VideoReader",
    "VideoWriter",
]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jp2"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})


#: The pixel frames :func:`read_image` offers (see the module docstring).
FRAMES = ("stored", "upright")


class MediaError(ValueError):
    """A file could not be read as an image or video."""


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Any common array image -> (H, W, 3) uint8 RGB.

    Accepts (H, W) or (H, W, 1) grayscale, (H, W, 3) RGB, (H, W, 4) RGBA (alpha dropped);
    uint8, uint16 (scaled by 1/257) or float in [0, 1].
    """
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"expected an image array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape {a.shape}")
    if a.dtype == np.uint16:
        a = (a.astype(np.uint32) * 255 + 32767) // 65535
    elif a.dtype.kind == "f":
        a = np.clip(np.rint(a * 255.0), 0, 255)
    elif a.dtype != np.uint8:
        a = np.clip(a, 0, 255)
    a = a.astype(np.uint8, copy=False)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        a = a[:, :, :3]
    return np.ascontiguousarray(a)


def read_image(path: str | Path, *, frame: str) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3) in the pixel ``frame`` asked for: ``"stored"``
    (EXIF orientation ignored: the frame of COCO-format annotations) or ``"upright"`` (turned by
    the EXIF orientation: how a photo is meant to be seen). See the module docstring."""
    if frame not in FRAMES:
        raise ValueError(f"frame must be one of {FRAMES}, got {frame!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise MediaError(f"{path}: file is empty")
    # IMREAD_COLOR gives 8-bit BGR for gray / RGBA / 16-bit files and applies the EXIF orientation
    flags = cv2.IMREAD_COLOR | (cv2.IMREAD_IGNORE_ORIENTATION if frame == "stored" else 0)
    img = cv2.imdecode(data, flags)
    if img is None or img.size == 0:
        raise MediaError(f"{path}: not a readable image (unknown format or corrupt data)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class VideoReader:
    """Frames of a video file (or a webcam index) as RGB uint8; stops at the first frame that
    does not decode, so a video with a broken tail yields every frame before it."""

    def __init__(self, source: str | Path | int) -> None:
        self.source = source
        self._cap = cv2.VideoCapture(source if isinstance(source, int) else str(source))
        if not self._cap.isOpened():
            what = f"webcam {source}" if isinstance(source, int) else f"{source}"
            raise MediaError(f"{what}: cannot be opened as a video")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else 25.0
        n = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = n if n > 0 else None
        self.size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            while True:
                ok, frame = self._cap.read()
                if not ok or frame is None or frame.size == 0:
                    return
                yield cv2.cvtColor(to_bgr_uint8(frame), cv2.COLOR_BGR2RGB)
        finally:
            self.close()

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def to_bgr_uint8(frame: np.ndarray) -> np.ndarray:
    """Decoded video frames are normally BGR uint8 already; normalise the odd ones."""
    if frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8:
        return frame
    return to_rgb_uint8(frame)


class VideoWriter:
    """An ``.mp4`` (mp4v) writer taking RGB frames; opened at the first frame's size."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = fps
        self._w: cv2.VideoWriter | None = None
        self.frames = 0

    def write(self, frame_rgb: np.ndarray) -> None:
        if self._w is None:
            h, w = frame_rgb.shape[:2]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._w = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._w.isOpened():
                raise MediaError(f"{self.path}: cannot open a video writer (mp4v)")
        self._w.write(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        if self._w is not None:
            self._w.release()
            self._w = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
