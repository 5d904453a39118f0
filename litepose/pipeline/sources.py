"""Where frames come from: an image file, a folder, a glob, a video file, a network stream
(``rtsp://``, ``http(s)://``) or a camera (an index, or ``/dev/videoN``).

:func:`resolve_source` turns what a user names into the image files and videos (paths, stream
URLs or camera indices) to read, in name order, plus the files it skips and why;
:meth:`Sources.open_streams` opens the network streams up front, so that one that cannot be
reached is an error before any model is loaded (:mod:`litepose.media` does the decoding).
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Sources", "resolve_source"]

_GLOB_CHARS = set("*?[")


@dataclass
class Sources:
    """What a source names: image files, videos (paths), network streams (URL strings) or cameras
    (int indices), and the files left out with the reason."""

    images: list[Path] = field(default_factory=list)
    videos: list[Path | int | str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: the name of the sequence the images form (a folder's name, else "frames"), for tracking
    sequence: str = "frames"
    #: streams opened by :meth:`open_streams`, by URL, until a run takes them
    opened: dict[str, Any] = field(default_factory=dict)

    def files(self) -> list[Path]:
        """Every input file (streams and cameras excluded)."""
        return self.images + [v for v in self.videos if isinstance(v, Path)]

    def open_streams(self) -> None:
        """Open each network stream not yet open (:class:`litepose.media.VideoReader`, with its
        time limits): one that cannot be reached is a :class:`litepose.media.MediaError` naming it,
        raised here, before any work."""
        from ..media import VideoReader

        for v in self.videos:
            if isinstance(v, str) and v not in self.opened:
                self.opened[v] = VideoReader(v)

    def close_streams(self) -> None:
        """Release the streams opened and not taken by a run."""
        for reader in self.opened.values():
            reader.close()
        self.opened.clear()


def stream_name(url: str) -> str:
    """The output name of a stream: its URL's last path part without suffix (``rtsp://cam/live/front``
    -> ``front``), else its host, in letters, digits, ``-`` and ``_`` only; ``stream`` if none."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        last = Path(parts.path.rstrip("/")).stem or (parts.hostname or "")
    except ValueError:
        last = ""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", last).strip("_")
    return name or "stream"


def resolve_source(source: str | Path | int | Sources) -> Sources:
    """The image files, videos, stream or camera that ``source`` names: an image or video file, a
    folder (its files, hidden ones excluded), a glob (``imgs/*.jpg``, ``**`` recursive), a network
    stream (``rtsp://``, ``rtsps://``, ``rtmp://``, ``http(s)://`` URL: not checked here, see
    :meth:`Sources.open_streams`) or a camera (an index: an int, or digits that are not a file's
    name; or its device, ``/dev/videoN``). A folder or glob matching nothing, or a missing file or
    camera device, is a FileNotFoundError naming it."""
    from ..media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, is_stream_url

    if isinstance(source, Sources):  # already resolved (a folder is listed once per run)
        return source
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit() and not Path(source).exists()):
        return Sources(videos=[int(source)])
    if is_stream_url(source):
        return Sources(videos=[str(source)])
    text = str(source)
    device = re.fullmatch(r"/dev/video(\d+)", text)
    if device is not None:
        if not Path(text).exists():
            raise FileNotFoundError(f"{text}: no such camera device")
        return Sources(videos=[int(device.group(1))])
    if "://" in text and not Path(text).exists():
        scheme = text.split("://", 1)[0]
        raise ValueError(f"{text}: {scheme}:// is not a stream litepose reads (rtsp, rtsps, rtmp, http, https)")
    sequence = "frames"
    if _GLOB_CHARS & set(text) and not Path(text).exists():
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not files:
            raise FileNotFoundError(f"{text}: the pattern matches no file")
        explicit = False
    else:
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            if not files:
                raise FileNotFoundError(f"{text}: the folder has no files")
            explicit, sequence = False, path.name or "frames"
        elif path.is_file():
            files, explicit = [path], True
        else:
            raise FileNotFoundError(f"{text}: no such file, folder or glob match (or webcam index)")
    found = Sources(sequence=sequence)
    seen: set[str] = set()
    for f in files:
        real = os.path.realpath(f)
        if real in seen:  # the same file again (a '**' glob through a symlinked folder, a link to it)
            continue
        seen.add(real)
        suffix = f.suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            found.videos.append(f)
        elif suffix in IMAGE_SUFFIXES or explicit:
            found.images.append(f)  # an explicit file of unknown type is tried as an image
        else:
            found.skipped.append((str(f), "not an image or video file"))
    return found
