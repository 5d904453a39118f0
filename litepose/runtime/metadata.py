"""What an exported network file records about itself, in one place: the keys and their values.

ONNX files keep them in ``metadata_props``, OpenVINO IR in ``rt_info`` (under ``litepose``),
TorchScript files in an extra file ``litepose.json``: every value is a string (JSON for the
structured ones), so the three stores hold the same thing. A runtime needs nothing else to
pre- and post-process for the network: joints, keypoint set (names, flips, skeleton, sigmas,
grouping order), input size, normalisation; plus the architecture and precision for reports.

Torch-free, so that a runtime without torch reads them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..data.jsonio import parse_json
from ..data.keypoints import KeypointSet, keypoint_set_for
from ..normalization import IMAGENET, Normalization

__all__ = ["ModelInfo", "FORMAT", "TS_EXTRA", "to_strings", "from_strings", "model_info"]

#: Version of the metadata layout; a file of a later layout is refused with a clear message.
FORMAT = 1
_PREFIX = "litepose."
#: The extra file of a TorchScript export that holds the metadata.
TS_EXTRA = "litepose.json"


@dataclass(frozen=True)
class ModelInfo:
    """What the pre- and post-processing need to know about a network."""

    num_joints: int
    keypoints: KeypointSet
    input_size: int | None = None
    normalization: Normalization = IMAGENET
    arch: str = "custom"
    precision: str = "fp32"


def to_strings(info: ModelInfo) -> dict[str, str]:
    """``info`` as ``{"litepose.<key>": string}``, the form every store takes."""
    values: dict[str, Any] = {
        "format": FORMAT,
        "joints": info.num_joints,
        "keypoints": info.keypoints.to_dict(),
        "input_size": info.input_size,
        "normalization": info.normalization.to_dict(),
        "arch": info.arch,
        "precision": info.precision,
    }
    return {_PREFIX + k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def from_strings(props: dict[str, str], where: str) -> ModelInfo:
    """Read :func:`to_strings`'s output back; ``where`` names the file in errors."""
    if _PREFIX + "joints" not in props:
        raise ValueError(
            f"{where}: carries no litepose metadata (joints, keypoints, input size, normalisation): "
            "export it with 'litepose export'"
        )

    def get(key: str, default: Any = None) -> Any:
        raw = props.get(_PREFIX + key)
        if raw is None:
            return default
        if key in ("arch", "precision"):
            return raw
        return parse_json(raw, f"{where}: metadata {_PREFIX + key}")

    fmt = get("format", 1)
    if not isinstance(fmt, int) or fmt > FORMAT:
        raise ValueError(f"{where}: metadata format {fmt} is newer than this litepose reads ({FORMAT}): upgrade it")
    k = int(get("joints"))
    ks = get("keypoints")
    keypoints = KeypointSet.from_dict(ks) if ks else keypoint_set_for(k)
    if keypoints.num_joints != k:
        raise ValueError(f"{where}: metadata keypoint set has {keypoints.num_joints} joints, the network {k}")
    size = get("input_size")
    return ModelInfo(
        num_joints=k,
        keypoints=keypoints,
        input_size=int(size) if size is not None else None,
        normalization=Normalization.from_dict(get("normalization")),
        arch=str(get("arch", "custom")),
        precision=str(get("precision", "fp32")),
    )


def model_info(model: Any, precision: str = "fp32") -> ModelInfo:
    """The metadata of a litepose module (its attributes, as :func:`litepose.load_checkpoint` sets them;
    read without torch, so the export and the torch backends share it)."""
    k = getattr(model, "num_joints", None)
    if k is None:
        raise ValueError("the model has no 'num_joints' attribute; build it with litepose.create_model")
    return ModelInfo(
        num_joints=int(k),
        keypoints=getattr(model, "keypoints", None) or keypoint_set_for(int(k)),
        input_size=getattr(model, "input_size", None),
        normalization=getattr(model, "normalization", None) or IMAGENET,
        arch=str(getattr(model, "arch", "custom")),
        precision=precision,
    )
