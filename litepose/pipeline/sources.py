"""Where frames come from: an image file, a folder, a glob, a video file or a webcam.

:func:`resolve_source` turns what a user names into the image files and videos (or webcam
indices) to read, in name order, plus the files it skips and why; :func:`iter_video` and
:func:`read_item` read them (:mod:`litepose.media` does the decoding).
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Sources", "resolve_source"]

_GLOB_CHARS = set("*?[")


@dataclass
class Sources:
    """What a source names: image files, videos (paths) or webcams (int indices), and the files
    left out with the reason."""

    images: list[Path] = field(default_factory=list)
    videos: list[Path | int] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: the name of the sequence the images form (a folder's name, else "frames"), for tracking
    sequence: str = "frames"

    def files(self) -> list[Path]:
        """Every input file (webcams excluded)."""
        return self.images + [v for v in self.videos if not isinstance(v, int)]


def resolve_source(source: str | Path | int | Sources) -> Sources:
    """The image files, videos or webcam index that ``source`` names: an image or video file, a
    folder (its files, hidden ones excluded), a glob (``imgs/*.jpg``, ``**`` recursive) or a webcam
    index (an int, or digits that are not a file's name). A folder or glob matching nothing, or a
    missing file, is a FileNotFoundError naming it."""
    from ..media import IMAGE_SUFFIXES, VIDEO_SUFFIXES

    if isinstance(source, Sources):  # already resolved (a folder is listed once per run)
        return source
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit() and not Path(source).exists()):
        return Sources(videos=[int(source)])
    text = str(source)
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
