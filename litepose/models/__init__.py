"""The LitePose model family: networks, supernet, checkpoints, BN folding and profiling.

``create_model(name_or_spec, num_joints=17, weights=None)`` is the entry point: a preset name
(``litepose-xs``/``-s``/``-m``/``-l``, or ``xs`` ...), ``litepose-super`` for the supernet, a path
to an architecture JSON in the original's format, a JSON dict, or an :class:`ArchSpec`.
Trained weights come from :func:`load_checkpoint` (a path, or a name of
:mod:`litepose.models.weights` such as ``litepose-xs-coco``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .spec import PRESETS, ArchSpec, StageSpec, is_supernet, list_models, resolve_spec

if TYPE_CHECKING:
    from torch import nn

# Imported on first use, so that the torch-free parts (``spec``: architectures, input-size checks)
# load without torch: predicting from an exported file needs no torch.
_LAZY = {
    "CheckpointError": "errors",
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "fold_batchnorm": "fold",
    "LitePose": "litepose",
    "Profile": "profile",
    "profile_model": "profile",
    "SuperLitePose": "supernet",
    "extract_subnet": "supernet",
    "sample_arch": "space",
    "WeightsError": "errors",
    "download_weights": "weights",
    "list_weights": "weights",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ArchSpec",
    "StageSpec",
    "PRESETS",
    "LitePose",
    "SuperLitePose",
    "CheckpointError",
    "WeightsError",
    "Profile",
    "create_model",
    "list_models",
    "load_checkpoint",
    "save_checkpoint",
    "extract_subnet",
    "sample_arch",
    "fold_batchnorm",
    "profile_model",
    "list_weights",
    "download_weights",
]


def create_model(
    name_or_spec: str | Path | dict | ArchSpec,
    num_joints: int = 17,
    weights: str | Path | None = None,
) -> nn.Module:
    """Build a model; with ``weights`` (a path or a weights name) load a checkpoint into it as
    :func:`load_checkpoint` does (strictly, shapes checked; in eval mode, with the file's keypoints,
    input size and normalisation), the architecture and number of joints being these."""
    is_super = isinstance(name_or_spec, str) and is_supernet(name_or_spec)
    spec = None if is_super else resolve_spec(name_or_spec)[1]
    if weights is not None:
        from .checkpoint import _load

        return _load(weights, spec, num_joints, "super" if is_super else "litepose")[0]
    from ..data.keypoints import keypoint_set_for
    from .litepose import LitePose
    from .supernet import SuperLitePose

    model: nn.Module = SuperLitePose(num_joints) if is_super else LitePose(spec, num_joints)
    model.keypoints = keypoint_set_for(num_joints)
    return model
