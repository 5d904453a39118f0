"""Named pretrained weights: a small registry, a verified download and a cache.

``litepose.load_checkpoint("litepose-xs-coco")``, ``Predictor("litepose-xs-coco")`` and
``--weights litepose-xs-coco`` resolve here (:func:`resolve_checkpoint`): an existing path wins;
otherwise a registry name gives its file in the cache, downloaded on first use; otherwise the
error lists the names. A name of an exported network (an entry with a ``backend``, such as
``litepose-auto-s-coco``) is fetched here too but opened by :func:`litepose.runtime.open_backend`
(``Predictor``, ``predict`` / ``val --weights``): it is no checkpoint.

- Built in: the two COCO checkpoints of the mmpose port of LitePose (open-mmlab/mmpose PR #1486,
  the two its model card links), served by OpenMMLab, and the original authors' LitePose-Auto-S
  (COCO) as an OpenVINO IR (``.xml`` + ``.bin``) published on the Hugging Face hub by
  cansik/visiongraph, run by the OpenVINO backend. Reported AP is its publisher's, not measured here.
- ``$LITEPOSE_WEIGHTS_REGISTRY``: a JSON file (at most :data:`MAX_REGISTRY_BYTES`), an object of
  name -> entry, that adds (or replaces) entries: private models, mirrors, tests. An entry needs
  ``file`` (the file name) and ``sha256`` (8 or more hex digits, a prefix of the file's sha256); it
  may give ``base_url``, ``companions`` (``{"other file": "sha256"}``: files fetched and checked
  beside ``file``, such as an IR's ``.bin``), ``backend`` (the runtime of an exported network:
  ``openvino``, ``onnxruntime``, ``torchscript``; absent for a checkpoint) and the descriptive
  fields ``dataset``, ``keypoints``, ``input_size``, ``ap``, ``source``, ``license``.
- ``$LITEPOSE_WEIGHTS_URL`` replaces every entry's folder URL (mirrors, air-gapped sites, tests):
  the download URL is ``(LITEPOSE_WEIGHTS_URL or base_url) + "/" + file``. Only ``https://`` is
  accepted, and ``file://`` for a local mirror; a redirect to any other scheme is refused.
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
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files import sha256
from ..home import home_dir
from .errors import WeightsError

__all__ = [
    "ENV_REGISTRY",
    "ENV_URL",
    "MAX_REGISTRY_BYTES",
    "WeightsEntry",
    "WeightsError",
    "cache_state",
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
#: cansik/visiongraph on the Hugging Face hub, pinned to the revision whose files are hashed below.
VISIONGRAPH_URL = "https://huggingface.co/cansik/visiongraph/resolve/0de7ab36c9cf7d0843a1a19fd8c83db34a19d8a3"
#: URL schemes a download may use: https, or file for a local mirror (never plain http).
SCHEMES = ("https", "file")
#: The largest registry file read (a registry lists a few entries; /dev/zero would never end).
MAX_REGISTRY_BYTES = 1 << 20
#: Backends an entry may name: the runtimes of exported networks (a checkpoint names none).
ENTRY_BACKENDS = ("openvino", "onnxruntime", "torchscript")
TIMEOUT_S = 60.0  # per socket operation
_CHUNK = 1 << 20


@dataclass(frozen=True)
class WeightsEntry:
    """One named network file: where it comes from, how to check it, and what it is."""

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
    companions: tuple[tuple[str, str], ...] = ()  # (file, sha256) fetched beside `file` (an IR's .bin)
    backend: str | None = None  # the runtime of an exported network (openvino ...); None: a checkpoint

    def files(self) -> list[tuple[str, str]]:
        """``(file name, sha256 prefix)`` of every file the entry needs, its main ``file`` first."""
        return [(self.file, self.sha256), *self.companions]

    def url_for(self, file: str) -> str:
        """The download URL of one of the entry's files (``LITEPOSE_WEIGHTS_URL`` wins over
        ``base_url``); a scheme other than https (or file, for a local mirror) is refused."""
        env = os.environ.get(ENV_URL)
        base = env or self.base_url
        if not base:
            raise WeightsError(
                f"{self.name}: no download URL (the entry has no base_url and {ENV_URL} is not set); "
                f"copy {file} by hand to {weights_dir() / file}"
            )
        scheme = urllib.parse.urlsplit(base).scheme.lower()
        if scheme not in SCHEMES:
            where = ENV_URL if env else "its base_url"
            raise WeightsError(
                f"{self.name}: {where} {base} is not https: only https:// URLs are accepted "
                "(file:// for a local mirror), so that the file cannot be swapped on the way"
            )
        return base.rstrip("/") + "/" + file

    @property
    def url(self) -> str:
        """The download URL of the main file."""
        return self.url_for(self.file)

    @property
    def cache_path(self) -> Path:
        """The main file in the cache (its companions lie beside it)."""
        return weights_dir() / self.file

    def to_dict(self) -> dict[str, Any]:
        """Plain values (JSON-safe): ``companions`` as ``{file: sha256}``."""
        d = dataclasses.asdict(self)
        d["companions"] = dict(self.companions)
        return d


_FIELDS = {f.name for f in dataclasses.fields(WeightsEntry)} - {"name"}

_MMPOSE = {
    "base_url": MMPOSE_URL,
    "license": "none stated (mmpose: Apache-2.0)",
}
#: The mmpose port's released checkpoints that its model card links (its COCO table, commit cec8cccfe to
#: the PR head; its CrowdPose table links no file), saved in the port's early layout (docs/models.md says
#: how that was worked out; either layout loads). The port publishes only 8 hex digits of their sha256 (in
#: the file names). Then the original authors' LitePose-Auto-S as an OpenVINO IR: input raw BGR 0..255,
#: static 448x448, normalisation inside the graph, no litepose metadata (docs/models.md).
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
            "litepose-auto-s-coco", "litepose-auto-s-coco-fp32.xml",
            "040321c742d2f8d2910fdfcbf586a23203970d6fca55f3b4bb463ae07dff6d2c",
            companions=(
                ("litepose-auto-s-coco-fp32.bin", "19c456294ab6ae6719175d7d8967d16577ebef3f6b431f9c0b0df08ce2c592c0"),
            ),
            backend="openvino", base_url=VISIONGRAPH_URL, dataset="COCO", keypoints="coco", input_size=448,
            source="mit-han-lab/litepose LitePose-Auto-S, OpenVINO IR of cansik/visiongraph (no AP published)",
            license="MIT (mit-han-lab/litepose, per visiongraph's MODEL_ATTRIBUTIONS.md)",
        ),
    )
}  # fmt: skip


def weights_dir() -> Path:
    """Where downloaded weights live: ``$LITEPOSE_HOME/weights``."""
    return home_dir() / "weights"


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _check_file(where: str, key: str, file: Any, sha: Any) -> tuple[str, str]:
    """A (plain file name, lower-case sha256 prefix) pair of a registry entry, or a clear error."""
    if not isinstance(file, str) or not file or not isinstance(sha, str) or not sha:
        raise WeightsError(f"{where}: needs {key} (a file name string) and its sha256 (a string)")
    if Path(file).name != file or file in (".", ".."):
        raise WeightsError(f"{where}: {key} must be a plain file name, got {file!r}")
    sha = sha.lower()
    if not re.fullmatch(r"[0-9a-f]{8,64}", sha):
        raise WeightsError(f"{where}: the sha256 of {file!r} must be 8 to 64 hex digits (a prefix), got {sha!r}")
    return file, sha


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
    file, sha = _check_file(where, "'file'", e["file"], e["sha256"])
    companions = e.get("companions") or {}
    if not isinstance(companions, dict):
        raise WeightsError(f"{where}: 'companions' must be an object of file name -> sha256")
    pairs = tuple(_check_file(where, "a companion", f, h) for f, h in companions.items())
    if file in dict(pairs):
        raise WeightsError(f"{where}: {file!r} is both 'file' and a companion")
    backend = e.get("backend")
    if backend is not None and backend not in ENTRY_BACKENDS:
        known = ", ".join(ENTRY_BACKENDS)
        raise WeightsError(f"{where}: 'backend' must be one of {known} (or absent), got {backend!r}")
    try:
        size = None if e.get("input_size") is None else int(e["input_size"])
        ap = None if e.get("ap") is None else float(e["ap"])
    except (TypeError, ValueError):
        raise WeightsError(f"{where}: 'input_size' must be an integer and 'ap' a number") from None
    described = ("base_url", "dataset", "keypoints", "source", "license")
    text = {k: (None if e.get(k) is None else str(e[k])) for k in described}
    return WeightsEntry(name, file, sha, input_size=size, ap=ap, companions=pairs, backend=backend, **text)


def _read_registry(path: Path) -> bytes:
    """The registry file's bytes, refusing one over :data:`MAX_REGISTRY_BYTES` (read no further)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_REGISTRY_BYTES + 1)
    except FileNotFoundError:
        raise WeightsError(f"{ENV_REGISTRY}={path}: no such file") from None
    except OSError as e:
        raise WeightsError(f"{path} ({ENV_REGISTRY}): cannot read it: {e.strerror or e}") from None
    if len(raw) > MAX_REGISTRY_BYTES:
        raise WeightsError(
            f"{path} ({ENV_REGISTRY}): larger than {MAX_REGISTRY_BYTES // 1024} KiB, not a weights registry "
            "(a JSON object of a few entries); read no further"
        )
    return raw


def registry() -> dict[str, WeightsEntry]:
    """Name -> entry: the built-in weights, extended or overridden by ``$LITEPOSE_WEIGHTS_REGISTRY``."""
    out = dict(BUILTIN)
    env = os.environ.get(ENV_REGISTRY)
    if not env:
        return out
    path = Path(env).expanduser()
    raw = _read_registry(path)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
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
    A ``Path`` object is always taken as a path. A name of an exported network (an entry with a
    ``backend``) is no checkpoint: :func:`litepose.runtime.open_backend` runs it."""
    path = Path(ref)
    if isinstance(ref, Path) or path.exists():
        return path
    entry = find_weights(str(ref))
    if entry is not None:
        if entry.backend:
            raise WeightsError(
                f"{ref!r} is an exported network ({entry.file}, run by {entry.backend}), not a checkpoint: "
                "it predicts (litepose.Predictor, or the predict / val / benchmark commands) but cannot be "
                "trained, exported or transferred"
            )
        return download_weights(entry)
    from .spec import list_models, preset_name

    if preset_name(str(ref)) in list_models():
        arch = preset_name(str(ref))
        raise WeightsError(
            f"{ref!r} names an architecture, not trained weights: litepose.create_model({arch!r}) builds it "
            f"with random weights; named weights: {_names()}"
        )
    raise FileNotFoundError(f"checkpoint {ref} does not exist, and it is not a weights name ({_names()})")


def _file_state(path: Path, sha: str) -> tuple[str, str | None]:
    """``("absent" | "verified" | "mismatch", its sha256 or None)`` of one cached file."""
    if not path.is_file():
        return "absent", None
    digest = sha256(path)
    return ("verified" if digest.startswith(sha) else "mismatch"), digest


def cache_state(entry: WeightsEntry) -> str:
    """Whether the entry's files are cached: ``verified`` (every file there, every hash right),
    ``absent`` (none there), ``partial`` (some missing, those there right) or ``mismatch`` (a
    file there whose sha256 is not the expected one: a download would refuse to use it)."""
    states = {_file_state(weights_dir() / f, sha)[0] for f, sha in entry.files()}
    if "mismatch" in states:
        return "mismatch"
    if states == {"verified"}:
        return "verified"
    return "absent" if states == {"absent"} else "partial"


def _verified_cached(entry: WeightsEntry, file: str, sha: str) -> Path | None:
    """The cached file if present and matching its hash; None if absent; an error if it differs."""
    dest = weights_dir() / file
    state, digest = _file_state(dest, sha)
    if state == "absent":
        return None
    if state == "mismatch":
        raise WeightsError(
            f"{entry.name}: {dest} has sha256 {digest[:16]}..., not the expected prefix {sha}: "
            "it is not this file; delete it (or put the right file there)"
        )
    return dest


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to another https URL: never down to http (or any other scheme)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # urllib's signature
        target = urllib.parse.urljoin(req.full_url, newurl)
        if urllib.parse.urlsplit(target).scheme.lower() != "https":
            raise urllib.error.HTTPError(
                req.full_url, code, f"{msg}, a redirect to {target}, refused: not https", headers, fp
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    """A fresh opener (it reads the system's certificates now, not at import) whose redirects stay https."""
    return urllib.request.build_opener(_HttpsOnlyRedirects)


def _transfer(entry: WeightsEntry, file: str, sha: str, progress: bool) -> None:
    """Download ``file`` into a private temporary file beside its cache path; rename it after the checks."""
    from tqdm import tqdm

    from .. import __version__

    url, dest = entry.url_for(file), weights_dir() / file
    hint = f"copy the file by hand to {dest} (it is picked up there), or set {ENV_URL} to a mirror"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as e:
        raise WeightsError(f"{entry.name}: cannot write to the cache folder {dest.parent}: {e.strerror or e}") from None
    tmp = Path(tmp_name)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": f"litepose/{__version__}"})
        with os.fdopen(fd, "wb") as f, _opener().open(request, timeout=TIMEOUT_S) as response:
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
        if not digest.startswith(sha):
            raise WeightsError(
                f"{entry.name}: the file downloaded from {url} has sha256 {digest[:16]}..., not the expected "
                f"prefix {sha}: deleted it (a corrupt transfer, or the server's file changed)"
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
    for file, sha in entry.files():
        if _verified_cached(entry, file, sha) is None:
            _transfer(entry, file, sha, progress)
    return entry.cache_path


def download_weights(name: str | WeightsEntry, progress: bool = True) -> Path:
    """The cached main file of named weights (its companions beside it), downloaded and verified
    first if needed.

    Under a process group of several processes (``torchrun``) rank 0 downloads first and the
    others wait for it (then read the shared cache, or download themselves where the cache is
    not shared); a failure on rank 0 is raised on every rank.
    """
    entry = name if isinstance(name, WeightsEntry) else find_weights(name)
    if entry is None:
        raise WeightsError(f"unknown weights name {name!r} (named weights: {_names()})")
    from .. import dist

    if dist.world_size() > 1:
        rank = dist.rank()
        error = None
        if rank == 0:
            try:
                _fetch(entry, progress)
            except WeightsError as e:
                error = str(e)
        error = dist.broadcast_object(error)
        if error:
            raise WeightsError(error)
        return _fetch(entry, progress and rank == 0)
    return _fetch(entry, progress)


def list_weights() -> list[dict[str, Any]]:
    """Every registry entry as a dict: its fields, ``cache_state`` (:func:`cache_state`), ``cached``
    (true only when every file is there with the right hash) and the cache ``path``."""
    rows = []
    for e in registry().values():
        state = cache_state(e)
        rows.append(dict(e.to_dict(), cached=state == "verified", cache_state=state, path=str(e.cache_path)))
    return rows
