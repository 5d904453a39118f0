"""Named pretrained weights: a small registry, a verified download and a cache.

``litepose.load_checkpoint("litepose-xs-coco")``, ``Predictor("litepose-xs-coco")`` and
``--weights litepose-xs-coco`` resolve here (:func:`resolve_checkpoint`): an existing path wins;
otherwise a registry name gives its file in the cache, downloaded on first use; otherwise the
error lists the names.

- Built in: the four checkpoints of the mmpose port of LitePose (open-mmlab/mmpose PR #1486),
  served by OpenMMLab. Their AP is what the port reported, not measured here.
- ``$LITEPOSE_WEIGHTS_REGISTRY``: a JSON file, an object of name -> entry, that adds (or
  replaces) entries: private models, mirrors, tests. An entry needs ``file`` (the file name) and
  ``sha256`` (8 or more hex digits, a prefix of the file's sha256); it may give ``base_url`` and
  the descriptive fields ``dataset``, ``keypoints``, ``input_size``, ``ap``, ``source``, ``license``.
- ``$LITEPOSE_WEIGHTS_URL`` replaces every entry's folder URL (mirrors, air-gapped sites, tests):
  the download URL is ``(LITEPOSE_WEIGHTS_URL or base_url) + "/" + file``. ``file://`` URLs work.
- The cache is ``$LITEPOSE_HOME/weights`` (default ``~/.cache/litepose/weights``). A file copied
  there by hand is used as it is, after the same hash check.

A download goes to a temporary file of its own in the cache folder (concurrent processes never
share one) and is renamed to its final name only after its length and hash are checked; a
failed, interrupted or mismatching transfer leaves nothing behind. Under ``torchrun`` (a process
group with more than one process) rank 0 downloads while the others wait, so every rank must
resolve the same names. Every failure is a :class:`WeightsError` (a ``CheckpointError``) whose
one-line message names the URL and the cache path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..home import home_dir
from .checkpoint import CheckpointError

__all__ = [
    "ENV_REGISTRY",
    "ENV_URL",
    "WeightsEntry",
    "WeightsError",
    "download_weights",
    "find_weights",
    "list_weights",
    "registry",
    "resolve_checkpoint",
    "weights_dir",
]

ENV_REGISTRY = "LITEPOSE_WEIGHTS_REGISTRY"
ENV_URL = "LITEPOSE_WEIGHTS_URL"
MMPOSE_URL = "https://download.openmmlab.com/mmpose/bottom_up/litepose"
TIMEOUT_S = 60.0  # per socket operation
_CHUNK = 1 << 20


class WeightsError(CheckpointError):
    """Named weights cannot be resolved, downloaded or verified (the message says which, and where)."""


@dataclass(frozen=True)
class WeightsEntry:
    """One named checkpoint: where it comes from, how to check it, and what it is."""

    name: str
    file: str  # file name, on the server and in the cache
    sha256: str  # lower-case hex prefix (8+ digits) of the file's sha256
    base_url: str | None = None  # folder URL; LITEPOSE_WEIGHTS_URL replaces it
    dataset: str | None = None
    keypoints: str | None = None  # keypoint set name (coco, crowdpose)
    input_size: int | None = None
    ap: float | None = None  # AP as reported by `source` (not measured by litepose)
    source: str | None = None
    license: str | None = None

    @property
    def url(self) -> str:
        """The download URL (``LITEPOSE_WEIGHTS_URL`` wins over ``base_url``)."""
        base = os.environ.get(ENV_URL) or self.base_url
        if not base:
            raise WeightsError(
                f"{self.name}: no download URL (the entry has no base_url and {ENV_URL} is not set); "
                f"copy {self.file} by hand to {self.cache_path}"
            )
        return base.rstrip("/") + "/" + self.file

    @property
    def cache_path(self) -> Path:
        return weights_dir() / self.file

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_FIELDS = {f.name for f in dataclasses.fields(WeightsEntry)} - {"name"}

_MMPOSE = {
    "base_url": MMPOSE_URL,
    "license": "none stated (mmpose: Apache-2.0)",
}
#: The mmpose port's released checkpoints (its model zoo tables, commit cec8cccfe to the PR head), saved in
#: the port's early layout (docs/models.md says how that was worked out; either layout loads).
BUILTIN: dict[str, WeightsEntry] = {
    e.name: e
    for e in (
        WeightsEntry(
            "litepose-xs-coco", "litepose_xs_coco_256x256-02c29c82_20220714.pth", "02c29c82",
            dataset="COCO", keypoints="coco", input_size=256, ap=41.2,
            source="mmpose PR #1486, COCO val2017", **_MMPOSE,
        ),
        WeightsEntry(
            "litepose-s-coco", "litepose_s_coco_448x448-2bd10ac6_20220714.pth", "2bd10ac6",
            dataset="COCO", keypoints="coco", input_size=448, ap=57.2,
            source="mmpose PR #1486, COCO val2017", **_MMPOSE,
        ),
        WeightsEntry(
            "litepose-xs-crowdpose", "litepose_xs_crowdpose_256x256-84053659_20220714.pth", "84053659",
            dataset="CrowdPose", keypoints="crowdpose", input_size=256, ap=49.4,
            source="mmpose PR #1486, CrowdPose test", **_MMPOSE,
        ),
        WeightsEntry(
            "litepose-s-crowdpose", "litepose_s_crowdpose_448x448-ccd9f2a9_20220714.pth", "ccd9f2a9",
            dataset="CrowdPose", keypoints="crowdpose", input_size=448, ap=58.2,
            source="mmpose PR #1486, CrowdPose test", **_MMPOSE,
        ),
    )
}  # fmt: skip


def weights_dir() -> Path:
    """Where downloaded weights live: ``$LITEPOSE_HOME/weights``."""
    return home_dir() / "weights"


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _entry_from_json(name: str, e: Any, path: Path) -> WeightsEntry:
    where = f"{path}: entry {name!r}"
    if not isinstance(e, dict):
        raise WeightsError(f"{where}: must be an object with at least 'file' and 'sha256'")
    unknown = sorted(set(e) - _FIELDS)
    if unknown:
        raise WeightsError(f"{where}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(_FIELDS))})")
    for key in ("file", "sha256"):
        if not isinstance(e.get(key), str) or not e[key]:
            raise WeightsError(f"{where}: needs {key!r} (a string)")
    file, sha = e["file"], e["sha256"].lower()
    if Path(file).name != file or file in (".", ".."):
        raise WeightsError(f"{where}: 'file' must be a plain file name, got {file!r}")
    if not re.fullmatch(r"[0-9a-f]{8,64}", sha):
        raise WeightsError(f"{where}: 'sha256' must be 8 to 64 hex digits (a prefix of the sha256), got {sha!r}")
    try:
        size = None if e.get("input_size") is None else int(e["input_size"])
        ap = None if e.get("ap") is None else float(e["ap"])
    except (TypeError, ValueError):
        raise WeightsError(f"{where}: 'input_size' must be an integer and 'ap' a number") from None
    described = ("base_url", "dataset", "keypoints", "source", "license")
    text = {k: (None if e.get(k) is None else str(e[k])) for k in described}
    return WeightsEntry(name, file, sha, input_size=size, ap=ap, **text)


def registry() -> dict[str, WeightsEntry]:
    """Name -> entry: the built-in weights, extended or overridden by ``$LITEPOSE_WEIGHTS_REGISTRY``."""
    out = dict(BUILTIN)
    env = os.environ.get(ENV_REGISTRY)
    if not env:
        return out
    path = Path(env).expanduser()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise WeightsError(f"{ENV_REGISTRY}={path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WeightsError(f"{path} ({ENV_REGISTRY}): not a readable JSON weights registry: {e}") from None
    if not isinstance(data, dict):
        raise WeightsError(f"{path} ({ENV_REGISTRY}): must be a JSON object of name -> entry")
    for name, e in data.items():
        entry = _entry_from_json(str(name), e, path)
        out = {k: v for k, v in out.items() if _norm(k) != _norm(entry.name)}
        out[entry.name] = entry
    return out


def find_weights(name: str) -> WeightsEntry | None:
    """The registry entry called ``name`` (case and ``_``/``-`` ignored), or None."""
    wanted = _norm(name)
    return next((e for k, e in registry().items() if _norm(k) == wanted), None)


def _names() -> str:
    return ", ".join(registry())


def resolve_checkpoint(ref: str | Path) -> Path:
    """The file to read for ``ref``: an existing path as is, else a registry name's cached file
    (downloaded and verified on first use); otherwise a clear error that lists the names.
    A ``Path`` object is always taken as a path."""
    path = Path(ref)
    if isinstance(ref, Path) or path.exists():
        return path
    entry = find_weights(str(ref))
    if entry is not None:
        return download_weights(entry)
    from . import list_models
    from .spec import preset_name

    if preset_name(str(ref)) in list_models():
        arch = preset_name(str(ref))
        raise WeightsError(
            f"{ref!r} names an architecture, not trained weights: litepose.create_model({arch!r}) builds it "
            f"with random weights (--model {arch} on the command line); named weights: {_names()}"
        )
    raise FileNotFoundError(f"checkpoint {ref} does not exist, and it is not a weights name ({_names()})")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _verified_cached(entry: WeightsEntry) -> Path | None:
    """The cached file if present and matching its hash; None if absent; an error if it differs."""
    dest = entry.cache_path
    if not dest.is_file():
        return None
    digest = _sha256(dest)
    if not digest.startswith(entry.sha256):
        raise WeightsError(
            f"{entry.name}: {dest} has sha256 {digest[:16]}..., not the expected prefix {entry.sha256}: "
            "it is not this checkpoint; delete it (or put the right file there)"
        )
    return dest


def _transfer(entry: WeightsEntry, url: str, dest: Path, progress: bool) -> None:
    """Download ``url`` into a private temporary file beside ``dest``; rename it after the checks."""
    from tqdm import tqdm

    from .. import __version__

    hint = f"copy the file by hand to {dest} (it is picked up there), or set {ENV_URL} to a mirror"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as e:
        raise WeightsError(f"{entry.name}: cannot write to the cache folder {dest.parent}: {e.strerror or e}") from None
    tmp = Path(tmp_name)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": f"litepose/{__version__}"})
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if progress:
                print(f"downloading {url} -> {dest}", file=sys.stderr)
            h, n = hashlib.sha256(), 0
            with tqdm(
                total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=entry.name,
                file=sys.stderr, disable=not progress, leave=False,
            ) as bar:  # fmt: skip
                while chunk := response.read(_CHUNK):
                    f.write(chunk)
                    h.update(chunk)
                    n += len(chunk)
                    bar.update(len(chunk))
        if total is not None and n != total:
            raise WeightsError(
                f"{entry.name}: the download of {url} was interrupted after {n} of {total} bytes "
                f"(nothing was kept); try again, or {hint}"
            )
        digest = h.hexdigest()
        if not digest.startswith(entry.sha256):
            raise WeightsError(
                f"{entry.name}: the file downloaded from {url} has sha256 {digest[:16]}..., not the expected "
                f"prefix {entry.sha256}: deleted it (a corrupt transfer, or the server's file changed)"
            )
        os.replace(tmp, dest)
    except urllib.error.HTTPError as e:
        raise WeightsError(f"{entry.name}: cannot download {url}: HTTP {e.code} {e.reason}; {hint}") from None
    except urllib.error.URLError as e:
        reason = getattr(e.reason, "strerror", None) or e.reason
        raise WeightsError(f"{entry.name}: cannot download {url} ({reason}; offline?); {hint}") from None
    except (OSError, http.client.HTTPException) as e:  # reset connection, timeout, disk full ...
        what = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        raise WeightsError(f"{entry.name}: the download of {url} failed ({what}; nothing was kept); {hint}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _fetch(entry: WeightsEntry, progress: bool) -> Path:
    cached = _verified_cached(entry)
    if cached is not None:
        return cached
    _transfer(entry, entry.url, entry.cache_path, progress)
    return entry.cache_path


def download_weights(name: str | WeightsEntry, progress: bool = True) -> Path:
    """The cached file of named weights, downloaded and verified first if needed.

    Under a process group of several processes (``torchrun``) rank 0 downloads first and the
    others wait for it (then read the shared cache, or download themselves where the cache is
    not shared); a failure on rank 0 is raised on every rank.
    """
    entry = name if isinstance(name, WeightsEntry) else find_weights(name)
    if entry is None:
        raise WeightsError(f"unknown weights name {name!r} (named weights: {_names()})")
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        from ..engine.distributed import broadcast_object

        rank = dist.get_rank()
        error = None
        if rank == 0:
            try:
                _fetch(entry, progress)
            except WeightsError as e:
                error = str(e)
        error = broadcast_object(error)
        if error:
            raise WeightsError(error)
        return _fetch(entry, progress and rank == 0)
    return _fetch(entry, progress)


def list_weights() -> list[dict[str, Any]]:
    """Every registry entry as a dict (its fields, plus ``cached`` and the cache ``path``)."""
    return [dict(e.to_dict(), cached=e.cache_path.is_file(), path=str(e.cache_path)) for e in registry().values()]
