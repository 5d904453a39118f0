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
  (and as phones store most of theirs). ``litepose predict`` reads a user's photos this way
  (but in the stored frame when it scores against annotations, ``--ann``).

Size cap: :func:`read_image` refuses an image of more than :data:`MAX_IMAGE_PIXELS` (50
megapixels) from the file's header, before any pixel is decoded, so a small file that claims a
huge image costs nothing. (The network input has a cap of its own:
:data:`litepose.preprocess.MAX_INPUT_PIXELS`.)
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "MediaError",
    "FRAMES",
    "MAX_IMAGE_PIXELS",
    "to_rgb_uint8",
    "image_header",
    "read_image",
    "write_image",
    "check_images",
    "VideoReader",
    "VideoWriter",
    "STREAM_SCHEMES",
    "STREAM_TIMEOUT_S",
    "STREAM_RETRIES",
    "is_stream_url",
    "shown_url",
]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jp2"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})


#: The pixel frames :func:`read_image` offers (see the module docstring).
FRAMES = ("stored", "upright")


#: The most pixels (width x height) :func:`read_image` decodes: 50 megapixels, more than any photo
#: litepose is meant for (an 8000x6000 photo has 48).
MAX_IMAGE_PIXELS = 50_000_000


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


def image_header(path: str | Path, *, orientation: bool = False) -> tuple[int, int, int] | None:
    """``(width, height, EXIF orientation)`` from the file's header, without decoding its pixels;
    ``None`` when Pillow does not identify the format. The orientation (1 = none, up to 8) is read
    only when asked for (else 1). A header that claims over twice Pillow's own pixel limit is a
    :class:`MediaError`."""
    import warnings

    from PIL import Image

    turn = 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                if orientation and ("exif" in im.info or im.format == "TIFF"):  # parsed with the header
                    turn = int(im.getexif().get(0x0112, 1) or 1)
    except Image.DecompressionBombError:  # over twice Pillow's own limit, far above ours too
        raise MediaError(
            f"{path}: more than {2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} megapixels, above the limit of "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f} (litepose.media.MAX_IMAGE_PIXELS)"
        ) from None
    except Exception:  # not a format Pillow knows (or a broken header): OpenCV decides
        return None
    return int(width), int(height), turn if 1 <= turn <= 8 else 1


def _check_pixels(path: Path, width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise MediaError(
            f"{path}: {width}x{height} is {width * height / 1e6:.0f} megapixels, above the limit of "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f} (litepose.media.MAX_IMAGE_PIXELS); resize the image first"
        )


def read_image(path: str | Path, *, frame: str) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3) in the pixel ``frame`` asked for: ``"stored"``
    (EXIF orientation ignored: the frame of COCO-format annotations) or ``"upright"`` (turned by
    the EXIF orientation: how a photo is meant to be seen). See the module docstring; more than
    :data:`MAX_IMAGE_PIXELS` is refused before decoding."""
    if frame not in FRAMES:
        raise ValueError(f"frame must be one of {FRAMES}, got {frame!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: file is empty")
    header = image_header(path)
    if header is not None:
        _check_pixels(path, header[0], header[1])
    data = np.fromfile(path, dtype=np.uint8)
    # IMREAD_COLOR gives 8-bit BGR for gray / RGBA / 16-bit files and applies the EXIF orientation
    flags = cv2.IMREAD_COLOR | (cv2.IMREAD_IGNORE_ORIENTATION if frame == "stored" else 0)
    img = cv2.imdecode(data, flags)
    if img is None or img.size == 0:
        raise MediaError(f"{path}: not a readable image (unknown format or corrupt data)")
    _check_pixels(path, img.shape[1], img.shape[0])  # a format without a header Pillow reads
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


#: First bytes of the image formats Pillow reads headers of (JPEG, PNG, BMP, TIFF, WebP, PNM)
_PILLOW_MAGIC = (b"\xff\xd8", b"\x89PNG", b"BM", b"II*\x00", b"MM\x00*", b"RIFF", b"P2", b"P3", b"P5", b"P6")


def check_image(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as an image, found cheaply before any work starts (the file is
    missing, empty, or its header is broken or too large), or None. A file whose header is sound
    can still hold corrupt pixel data: that is found when it is decoded."""
    path = Path(path)
    try:
        if not path.is_file():
            return "no such file"
        if path.stat().st_size == 0:
            return "file is empty"
        header = image_header(path)
        if header is None:
            with open(path, "rb") as f:
                head = f.read(16)
            if head.startswith(_PILLOW_MAGIC):
                return "broken image header (a truncated or corrupt file)"
            if not (head[4:12] == b"jP  \r\n\x87\n" or head.startswith(b"\xff\x4f\xff\x51")):  # JPEG 2000
                return "not an image file (unknown format)"
        else:
            _check_pixels(path, header[0], header[1])
    except MediaError as e:
        return str(e).removeprefix(f"{path}: ")
    except OSError as e:
        return e.strerror or str(e)
    return None


def check_images(paths: list[str | Path], what: str = "images") -> None:
    """Check every image of ``paths`` with :func:`check_image` before the work starts; a
    :class:`MediaError` names the bad ones (the first five, and how many in all)."""
    bad = [(p, why) for p in paths if (why := check_image(p)) is not None]
    if bad:
        from .files import shown

        listed = "; ".join(f"{shown(p)}: {why}" for p, why in bad[:5])
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise MediaError(f"{len(bad)} of the {len(paths)} {what} cannot be read: {listed}{more}")


def write_image(path: str | Path, rgb: np.ndarray, params: list[int] | None = None) -> Path:
    """Write an RGB uint8 image, encoded by the suffix of ``path`` (``.jpg``, ``.png``, ...),
    atomically (:func:`litepose.files.atomic_write`). The bytes are written by Python, so a path of
    any bytes works (OpenCV's own file functions crash on names that are not valid UTF-8)."""
    from .files import atomic_write

    path = Path(path)
    ok, data = cv2.imencode(path.suffix or ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params or [])
    if not ok:
        raise MediaError(f"{path}: OpenCV cannot encode an image of this type ({path.suffix or 'no suffix'})")
    return atomic_write(path, lambda tmp: tmp.write_bytes(data.tobytes()))


def _plain(path: Path) -> bool:
    """Whether ``path`` can be handed to OpenCV's file functions as text (valid UTF-8)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _fd_path(fd: int) -> str | None:
    """A plain-text path naming the open file (or folder) ``fd``, where the OS offers one (Linux)."""
    p = f"/proc/self/fd/{fd}"
    return p if sys.platform.startswith("linux") and os.path.exists(p) else None


#: URL schemes :class:`VideoReader` opens as network streams (through OpenCV's FFmpeg backend).
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https")

#: Seconds a network stream may take to open, and to deliver a frame, before it counts as lost.
STREAM_TIMEOUT_S = 10.0
#: How often a live stream that was lost is reopened, waiting 1, 2, 4 ... seconds before each try.
STREAM_RETRIES = 3


def is_stream_url(source: object) -> bool:
    """Whether ``source`` names a network stream (``rtsp://``, ``http(s)://`` ...: :data:`STREAM_SCHEMES`)."""
    if not isinstance(source, str) or "://" not in source:
        return False
    return source.split("://", 1)[0].lower() in STREAM_SCHEMES


def shown_url(url: str) -> str:
    """``url`` for messages, without a password it may carry (``rtsp://user:***@host/...``)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


class VideoReader:
    """Frames of a video file, a network stream (``rtsp://``, ``http(s)://``) or a camera (its
    index) as RGB uint8; stops at the first frame that does not decode, so a video with a broken
    tail yields every frame before it. ``decoded`` counts the frames yielded, ``frame_count`` is
    what the file says it holds (None if unknown): fewer decoded than that means a truncated or
    corrupt file.

    ``latest=True`` (what ``litepose predict`` uses for a camera and a live stream): a background
    thread reads the source all the time and iteration yields the newest frame, so a consumer
    slower than the source drops frames (counted in ``dropped``) instead of falling ever further
    behind.

    A network stream never hangs: opening it, and each frame, may take at most ``timeout_s``
    seconds (FFmpeg's own time limits); one that cannot be opened is a :class:`MediaError`. A
    ``live`` stream (one of no known length: a camera's ``rtsp://``, not an ``.mp4`` served over
    http) that is lost is reopened up to ``retries`` times, waiting 1, 2, 4 ... seconds before each
    try (``reconnects`` counts those that worked); after that it ends, and ``lost`` is True."""

    def __init__(
        self,
        source: str | Path | int,
        *,
        latest: bool = False,
        timeout_s: float = STREAM_TIMEOUT_S,
        retries: int = STREAM_RETRIES,
    ) -> None:
        self.source = source
        self.latest = latest
        self.dropped = 0
        self.reconnects = 0
        self.lost = False
        self.url = source if is_stream_url(source) else None
        self.timeout_s, self.retries = float(timeout_s), int(retries)
        self._fd: int | None = None
        if self.url is not None:
            self._cap = self._open_url()
        else:
            self._cap = cv2.VideoCapture(source if isinstance(source, int) else self._openable(Path(source)))
        if not self._cap.isOpened():
            self._cap.release()
            if self.url is not None:
                raise MediaError(
                    f"{shown_url(self.url)}: cannot open the stream (unreachable, refused, not found or not a "
                    f"video; waited at most {self.timeout_s:g} s)"
                )
            what = f"webcam {source}" if isinstance(source, int) else f"{source}"
            raise MediaError(f"{what}: cannot be opened as a video")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else 25.0
        n = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = n if n > 0 else None
        self.size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        #: a stream of no known length: read as it comes (newest frame), reopened when lost
        self.live = self.url is not None and self.frame_count is None
        self.decoded = 0

    def _open_url(self) -> cv2.VideoCapture:
        """A capture of the stream through FFmpeg, with its time limits for opening and reading."""
        ms = int(self.timeout_s * 1000)
        _quiet_ffmpeg()
        return cv2.VideoCapture(
            self.url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
        )

    def _read(self) -> tuple[bool, np.ndarray | None]:
        """The next frame; a live stream that fails is reopened (see the class docstring)."""
        ok, frame = self._cap.read()
        if ok or not self.live:
            return ok, frame
        import time

        for attempt in range(self.retries):
            time.sleep(min(2.0**attempt, 8.0))
            self._cap.release()
            self._cap = self._open_url()
            if self._cap.isOpened():
                ok, frame = self._cap.read()
                if ok:
                    self.reconnects += 1
                    return ok, frame
        self.lost = True
        return False, None

    def _openable(self, path: Path) -> str:
        """The text OpenCV opens ``path`` by: the path itself, or for a name that is not valid
        UTF-8 the file opened here and named through ``/proc/self/fd``."""
        if _plain(path):
            return str(path)
        try:
            self._fd = os.open(path, os.O_RDONLY)
        except OSError as e:
            raise MediaError(f"{_shown(path)}: cannot be opened ({e.strerror})") from None
        alias = _fd_path(self._fd)
        if alias is None:
            raise MediaError(f"{_shown(path)}: OpenCV cannot open a video whose name is not valid UTF-8; rename it")
        return alias

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.latest:
            yield from self._newest()
            return
        try:
            while True:
                ok, frame = self._read()
                if not ok or frame is None or frame.size == 0:
                    return
                self.decoded += 1
                yield cv2.cvtColor(to_bgr_uint8(frame), cv2.COLOR_BGR2RGB)
        finally:
            self.close()

    def _newest(self) -> Iterator[np.ndarray]:
        """Frames from a reader thread that keeps only the newest one (see the class docstring)."""
        import threading

        cond = threading.Condition()
        slot: list[np.ndarray | None] = [None]
        state = {"done": False, "read": 0}

        def grab() -> None:
            while True:
                ok, frame = self._read()
                with cond:
                    if not ok or frame is None or frame.size == 0 or state["done"]:
                        state["done"] = True
                        cond.notify_all()
                        return
                    if slot[0] is not None:
                        self.dropped += 1  # the consumer did not take the previous frame in time
                    slot[0] = frame
                    state["read"] += 1
                    cond.notify_all()

        thread = threading.Thread(target=grab, name="litepose-capture", daemon=True)
        thread.start()
        try:
            while True:
                with cond:
                    while slot[0] is None and not state["done"]:
                        cond.wait(0.5)
                    frame, slot[0] = slot[0], None
                if frame is None:
                    return
                self.decoded += 1
                yield cv2.cvtColor(to_bgr_uint8(frame), cv2.COLOR_BGR2RGB)
        finally:
            with cond:
                state["done"] = True
            thread.join(timeout=2.0)
            self.close()

    def close(self) -> None:
        self._cap.release()
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

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
    """An ``.mp4`` (mp4v) writer taking RGB frames; opened at the first frame's size.

    The frames go to a hidden temporary file beside ``path`` (a plain ASCII name, opened through
    its folder's ``/proc/self/fd`` entry where the folder's name is not valid UTF-8), renamed to
    ``path`` by :meth:`close`: a video appears whole and playable or not at all, and a video being
    read is never replaced while it is read. A run killed outright (``kill -9``) can leave the
    temporary file ``.litepose-*.partial.mp4``; :meth:`discard` removes it instead of keeping it."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = fps
        self._w: cv2.VideoWriter | None = None
        self._tmp: Path | None = None
        self._dir_fd: int | None = None
        self.frames = 0

    def _open(self, w: int, h: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        name = f".litepose-{secrets.token_hex(6)}.partial{self.path.suffix or '.mp4'}"
        self._tmp = self.path.parent / name
        target = str(self._tmp)
        if not _plain(self.path.parent):
            self._dir_fd = os.open(self.path.parent, os.O_RDONLY)
            alias = _fd_path(self._dir_fd)
            if alias is None:
                raise MediaError(
                    f"{_shown(self.path)}: OpenCV cannot write a video into a folder whose name is not valid UTF-8"
                )
            target = f"{alias}/{name}"
        self._w = cv2.VideoWriter(target, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
        if not self._w.isOpened():
            raise MediaError(f"{_shown(self.path)}: cannot open a video writer (mp4v)")

    def write(self, frame_rgb: np.ndarray) -> None:
        """Append an RGB frame."""
        self.write_bgr(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))

    def write_bgr(self, frame_bgr: np.ndarray) -> None:
        """Append a frame in OpenCV's channel order (no conversion, no copy)."""
        if self._w is None:
            h, w = frame_bgr.shape[:2]
            self._open(w, h)
        self._w.write(frame_bgr)
        self.frames += 1

    def close(self) -> None:
        """Finish the file (playable) and give it its name."""
        if self._w is not None:
            self._w.release()
            self._w = None
        if self._tmp is not None:
            try:
                os.replace(self._tmp, self.path)
            except OSError as e:
                raise OSError(e.errno, e.strerror or str(e), str(self.path)) from None
            finally:
                self._tmp = None
                self._close_dir()

    def discard(self) -> None:
        """Stop without keeping anything."""
        if self._w is not None:
            self._w.release()
            self._w = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None
        self._close_dir()

    def _close_dir(self) -> None:
        if self._dir_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._dir_fd)
            self._dir_fd = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _quiet_ffmpeg() -> None:
    """Keep FFmpeg's and OpenCV's own log lines (a refused connection, a timeout) off stderr: the
    :class:`MediaError` says what happened, in one line. Set before FFmpeg's first use; a user's
    own ``OPENCV_FFMPEG_LOGLEVEL`` / ``OPENCV_LOG_LEVEL`` wins."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    with contextlib.suppress(Exception):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def _shown(path: str | Path) -> str:
    from .files import shown

    return shown(path)
