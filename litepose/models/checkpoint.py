"""Reading and writing LitePose checkpoints.

Two kinds of files are read:

- foreign files: the original's releases (a plain state_dict, or a dict holding one under
  ``state_dict`` / ``model``, keys with or without ``module.`` prefixes) and the mmpose port's
  (mmcv's ``{"meta", "state_dict"}``, keys in one of the port's layouts, see
  :mod:`litepose.models.layouts`). The architecture and number of joints are inferred from the
  tensor shapes;
- litepose's own files, which describe themselves under the ``"litepose"`` key (spec, number
  of joints, keypoint metadata, input size, normalisation, package version).

Wherever a checkpoint is read, a name from the weights registry (``litepose-xs-coco`` ...,
:mod:`litepose.models.weights`) works too: an existing path wins, else the name's cached
(downloaded on first use) file.

Everything is loaded with ``torch.load(..., weights_only=True)``. Besides tensors and plain
containers, only numpy scalars and dtypes are rebuilt (mmcv writes them into ``meta``); a file
whose pickle would call anything else is refused, without running it.
"""

from __future__ import annotations

import errno
import functools
import importlib
import io
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.keypoints import KeypointSet, keypoint_set_for
from ..errors import one_line
from ..normalization import IMAGENET, Normalization
from .errors import CheckpointError
from .layouts import to_original
from .litepose import LitePose
from .spec import ArchSpec, StageSpec, resolve_spec, spec_name
from .supernet import SuperLitePose

__all__ = [
    "CheckpointError",
    "load_checkpoint",
    "save_checkpoint",
    "read_state_dict",
    "infer_spec",
    "checkpoint_metadata",
]


_SAFE_GLOBALS_LOCK = threading.Lock()


@functools.cache
def _numpy_safe_globals() -> tuple[Any, ...]:
    """What ``torch.load(weights_only=True)`` needs, beyond its defaults, to rebuild numpy scalars.

    A pickled numpy scalar calls ``multiarray.scalar(dtype, bytes)``, spelled
    ``numpy.core.multiarray`` by numpy 1 (which wrote the 2022 mmcv files) and
    ``numpy._core.multiarray`` by numpy 2; its dtype is rebuilt by calling ``numpy.dtype`` and
    setting the state of the resulting dtype-class instance. Nothing else of numpy is allowed.
    """
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        return ()
    try:
        multiarray = importlib.import_module("numpy._core.multiarray")
    except ImportError:  # numpy < 1.26 has only the numpy 1 spelling
        multiarray = importlib.import_module("numpy.core.multiarray")
    scalar = multiarray.scalar
    dtype_classes = sorted({type(np.dtype(c)) for c in np.typecodes["All"]}, key=lambda t: t.__qualname__)
    return (
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
        np.dtype,
        *dtype_classes,
    )


#: The oldest torch that reads checkpoints as :func:`_torch_load` does: ``torch.serialization.safe_globals``
#: (2.5) taking ``(function, "module.name")`` pairs (2.6), which numpy 1 and numpy 2 spellings of
#: one function need. pyproject.toml asks for it too.
MIN_TORCH = (2, 6)


def _check_torch() -> None:
    """Refuse, with the version needed, a torch too old for :func:`_torch_load` (whose own failure
    would otherwise read as a corrupt file)."""
    ser = torch.serialization
    found = re.match(r"(\d+)\.(\d+)", str(torch.__version__))
    version = (int(found.group(1)), int(found.group(2))) if found else MIN_TORCH
    if not (hasattr(ser, "safe_globals") and hasattr(ser, "get_safe_globals")) or version < MIN_TORCH:
        need = ".".join(map(str, MIN_TORCH))
        raise CheckpointError(
            f"reading checkpoints needs torch >= {need} (weights-only loading with safe globals); this is torch "
            f"{torch.__version__}: upgrade it (pip install 'torch>={need}')"
        )


def _torch_load(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` with numpy scalars allowed and one-line errors."""
    _check_torch()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: file is empty, not a checkpoint")
    with open(path, "rb") as f:
        head = f.read(2)
    if head != b"PK" and head[:1] != b"\x80":  # torch.save writes a zip archive (or, before torch 1.6, a pickle)
        raise CheckpointError(
            f"{path}: not a PyTorch checkpoint (neither the zip archive nor the pickle that torch.save writes)"
        )
    try:
        with _SAFE_GLOBALS_LOCK:  # the allowlist is process-wide: one of our loads at a time edits it
            already = set(torch.serialization.get_safe_globals())
            extra = [g for g in _numpy_safe_globals() if g not in already]  # leave the caller's own alone
            with torch.serialization.safe_globals(extra):
                return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt files (RuntimeError, IndexError, ...)
        text = str(e)
        msg = one_line(text, 300) if text else type(e).__name__
        if "Weights only load failed" in text:
            found = re.search(r"GLOBAL (\S+)|unrecognized function (.+?)(?: which|$)|but got (<[^>]+>)", text, re.M)
            what = next((g for g in found.groups() if g), None) if found else None
            raise CheckpointError(
                f"{path}: its pickle calls code ({what or 'an object litepose does not rebuild'}), which litepose "
                "never runs: only tensors, plain containers and numpy scalars are loaded (weights_only=True)"
            ) from None
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint (truncated, corrupt or another file type): {msg}"
        ) from None


@dataclass
class _Read:
    path: Path  # the file read (a registry name's cached file)
    state_dict: dict[str, torch.Tensor]  # in the original's keys
    meta: dict[str, Any] | None  # litepose's self-description, if any
    layout: str  # "litepose", or one of layouts.LAYOUTS


def _read(ref: str | Path) -> _Read:
    from .weights import resolve_checkpoint

    path = resolve_checkpoint(ref)
    obj = _torch_load(path)
    meta = None
    if isinstance(obj, dict) and isinstance(obj.get("litepose"), dict):
        meta = obj["litepose"]
    sd = obj
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict", "net"):
            if isinstance(obj.get(key), dict):
                sd = obj[key]
                break
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{path}: does not contain a state_dict (a dict of tensors)")
    out = {}
    for k, v in sd.items():
        k = str(k)
        while k.startswith("module."):
            k = k[len("module.") :]
        out[k] = v
    try:
        out, layout = to_original(out, path)
    except ValueError as e:
        raise CheckpointError(str(e)) from None
    return _Read(path, out, meta, "litepose" if meta is not None else layout)


def read_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """Load ``path`` (or a registry name) and return ``(state_dict, litepose_metadata_or_None)``.

    Unwraps ``state_dict`` / ``model`` containers, strips ``module.`` prefixes and renames the
    mmpose port's layouts to the original's keys.
    """
    r = _read(path)
    return r.state_dict, r.meta


_BLOCK = re.compile(r"^stage\.(\d+)\.(\d+)\.inv\.0\.weight$")


def _need(sd: dict[str, torch.Tensor], key: str, path: Path) -> torch.Tensor:
    if key not in sd:
        sample = ", ".join(list(sd)[:3])
        raise CheckpointError(f"{path}: not a LitePose checkpoint: key {key!r} is missing (found keys like {sample})")
    return sd[key]


def infer_spec(sd: dict[str, torch.Tensor], path: Path | str = "<state_dict>") -> tuple[str, ArchSpec, int]:
    """Infer ``(kind, spec, num_joints)`` from tensor shapes; kind is ``"litepose"`` or ``"super"``.

    Stage strides are not visible in shapes; LitePose always uses 2, 2, 2, 1. The input size is
    the preset's when the spec equals a preset, else 256.
    """
    path = Path(path)
    num_joints = int(_need(sd, "final_refined.1.conv.3.weight", path).shape[0])
    stem = int(_need(sd, "first.2.weight", path).shape[0])
    kind = "super" if any(k.endswith("Linear5x5.weight") for k in sd) else "litepose"
    blocks: dict[int, dict[int, tuple[float, int, int]]] = {}
    for k in sd:
        m = _BLOCK.match(k)
        if not m:
            continue
        s, b = int(m.group(1)), int(m.group(2))
        hidden, cin = sd[k].shape[:2]
        kernel = int(_need(sd, f"stage.{s}.{b}.depth_conv.0.weight", path).shape[-1])
        cout = int(_need(sd, f"stage.{s}.{b}.point_conv.0.weight", path).shape[0])
        t = hidden / cin
        blocks.setdefault(s, {})[b] = (int(t) if float(t).is_integer() else t, kernel, cout)
    if sorted(blocks) != [0, 1, 2, 3]:
        raise CheckpointError(f"{path}: not a LitePose checkpoint: expected 4 backbone stages, found {sorted(blocks)}")
    stages = []
    for s, stride in zip(range(4), (2, 2, 2, 1)):
        bl = blocks[s]
        if sorted(bl) != list(range(len(bl))):
            raise CheckpointError(f"{path}: stage {s} has gaps in its block indices {sorted(bl)}")
        stages.append(StageSpec(bl[0][2], stride, tuple((bl[i][0], bl[i][1]) for i in range(len(bl)))))
    deconv = tuple(int(_need(sd, f"deconv_refined.{i}.weight", path).shape[1]) for i in range(3))
    spec = ArchSpec(256, stem, tuple(stages), deconv)  # type: ignore[arg-type]
    if kind == "litepose":
        for _name, p in _presets().items():
            if p.with_input_size(256) == spec:
                spec = p
                break
    else:
        spec = spec.with_input_size(512)
    return kind, spec, num_joints


def _presets() -> dict[str, ArchSpec]:
    from .spec import PRESETS

    return PRESETS


def _load_into(model: nn.Module, sd: dict[str, torch.Tensor], path: Path) -> None:
    """Strict load with an error naming the key and the expected vs found shapes."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    if missing:
        raise CheckpointError(
            f"{path}: does not fit the model: {len(missing)} missing keys, first {missing[0]!r}"
            + (f"; unexpected keys, first {unexpected[0]!r}" if unexpected else "")
        )
    if unexpected:
        raise CheckpointError(f"{path}: does not fit the model: unexpected key {unexpected[0]!r}")
    for k, v in own.items():
        if tuple(sd[k].shape) != tuple(v.shape):
            raise CheckpointError(
                f"{path}: does not fit the model: key {k!r} expected shape {tuple(v.shape)}, found {tuple(sd[k].shape)}"
            )
    model.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()})


def load_checkpoint(
    path: str | Path,
    arch: str | Path | dict | ArchSpec | None = None,
    num_joints: int | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint (a path, or a registry name such as ``litepose-xs-coco``) into a fresh
    model in eval mode; returns ``(model, info)``.

    ``arch`` / ``num_joints`` override what the file says or its shapes imply (a mismatch is a
    :class:`CheckpointError` naming the key and both shapes). ``info`` holds ``arch``
    ("litepose-xs" ... "litepose-l", "custom" or "super"), ``num_joints``, ``input_size``,
    ``spec`` (original JSON format), ``keypoints`` (dict), ``normalization`` (dict; also set
    on the model as ``model.normalization``, which :class:`~litepose.Predictor` uses), ``source``
    ("litepose" for self-describing files, "foreign" otherwise), ``layout`` ("litepose",
    "original", "mmpose-early" or "mmpose-convmodule"), ``path`` (the file read) and any
    ``extra`` metadata.
    """
    return _load(path, arch, num_joints)


def _load(
    path: str | Path,
    arch: str | Path | dict | ArchSpec | None,
    num_joints: int | None,
    want: str | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """:func:`load_checkpoint`, with ``want`` (``"litepose"`` or ``"super"``) fixing the kind of
    model built whatever the file holds (:func:`~litepose.models.create_model`: a file of the other
    kind then does not fit, and says so)."""
    r = _read(path)
    path, sd, meta = r.path, r.state_dict, r.meta
    if meta is not None:
        file_kind = meta.get("kind", "litepose")
        spec = ArchSpec.from_json(meta["spec"])
        file_joints = int(meta["num_joints"])
        kps = KeypointSet.from_dict(meta["keypoints"]) if meta.get("keypoints") else None
        source = "litepose"
    else:
        file_kind, spec, file_joints = infer_spec(sd, path)
        kps = None
        source = "foreign"
    kind = want or file_kind
    k = file_joints if num_joints is None else int(num_joints)
    if kind == "super":
        # a self-describing file records the supernet's largest spec (tiny supernets of tests, ...)
        described = meta is not None and file_kind == "super"
        model: nn.Module = SuperLitePose(k, spec) if described else SuperLitePose(k)
        if arch is not None:
            model.set_arch(arch)
    else:
        if arch is not None:
            spec = resolve_spec(arch)[1]
        model = LitePose(spec, k)
    _load_into(model, sd, path)
    if kps is None or kps.num_joints != k:
        kps = keypoint_set_for(k)
    model.keypoints = kps
    model.eval()
    input_size = int(meta.get("input_size", spec.input_size)) if meta else spec.input_size
    model.input_size = input_size
    try:
        model.normalization = Normalization.from_dict((meta or {}).get("normalization"))
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from None
    info = {
        "arch": "super" if kind == "super" else spec_name(spec),
        "num_joints": k,
        "input_size": input_size,
        "spec": spec.to_json() if kind != "super" else model.max_spec.to_json(),
        "keypoints": kps.to_dict(),
        "normalization": model.normalization.to_dict(),
        "source": source,
        "layout": r.layout,
        "path": str(path),
    }
    if meta and meta.get("extra"):
        info["extra"] = meta["extra"]
    return model, info


def checkpoint_metadata(model: nn.Module, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The self-description litepose writes next to a model's weights."""
    from .. import __version__

    kind = "super" if isinstance(model, SuperLitePose) else "litepose"
    spec = model.max_spec if kind == "super" else model.spec
    kps = getattr(model, "keypoints", None) or keypoint_set_for(model.num_joints)
    meta = {
        "format": 1,
        "kind": kind,
        "arch": "super" if kind == "super" else spec_name(spec),
        "spec": spec.to_json(),
        "num_joints": int(model.num_joints),
        "keypoints": kps.to_dict(),
        "input_size": int(getattr(model, "input_size", spec.input_size)),
        "normalization": getattr(model, "normalization", IMAGENET).to_dict(),
        "version": __version__,
    }
    if extra:
        meta["extra"] = extra
    return meta


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` through :func:`litepose.files.atomic_write`: never a half file, the folder's
    normal permissions, no temporary file left behind on failure. A failed write (a full disk, a
    quota, an I/O error) is an ``OSError`` naming ``path``, whichever way torch reports it."""
    from ..files import atomic_write

    def write(tmp: Path) -> None:
        buffer = io.BytesIO()  # serialised in memory, written by Python: a failed write is an OSError, never an abort
        try:
            torch.save(obj, buffer)
            tmp.write_bytes(buffer.getbuffer())
        except RuntimeError as e:  # torch's zip writer: "file write failed", "unexpected pos N vs M", ...
            text = str(e)
            if not any(k in text for k in _WRITE_FAILURES):
                raise
            from ..errors import one_line

            raise OSError(errno.EIO, f"the write failed, is the disk full? ({one_line(text, 200)})") from None

    return atomic_write(path, write)


#: What torch's checkpoint writer (PyTorchStreamWriter, inline_container.cc) says when the file
#: cannot be written: the OS's refusal reaches Python as a RuntimeError with one of these.
_WRITE_FAILURES = ("write", "unexpected pos", "inline_container", "PytorchStreamWriter")


def save_checkpoint(model: nn.Module, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write a self-describing checkpoint (weights + ``litepose`` metadata), atomically.

    ``extra`` must hold only plain types (it is read back with ``weights_only=True``).
    """
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return atomic_save({"litepose": checkpoint_metadata(model, extra), "state_dict": sd}, path)
