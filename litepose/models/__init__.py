"""The LitePose model family: networks, supernet, checkpoints, BN folding and profiling.

``create_model(name_or_spec, num_joints=17, weights=None)`` is the entry point: a preset name
(``litepose-xs``/``-s``/``-m``/``-l``, or ``xs`` ...), ``litepose-super`` for the supernet, a path
to an architecture JSON in the original's format, a JSON dict, or an :class:`ArchSpec`.
Trained weights come from :func:`load_checkpoint` (a path, or a name of
:mod:`litepose.models.weights` such as ``litepose-xs-coco``).
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..data.keypoints import keypoint_set_for
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .fold import fold_batchnorm
from .litepose import LitePose
from .profile import Profile, profile_model
from .spec import PRESETS, ArchSpec, StageSpec, preset_name, resolve_spec
from .supernet import SuperLitePose, extract_subnet, sample_arch
from .weights import WeightsError, download_weights, list_weights

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

SUPERNET_NAMES = ("litepose-super", "super", "supernet")


def list_models() -> list[str]:
    """Names ``create_model`` accepts (besides JSON specs)."""
    return [*PRESETS, "litepose-super"]


def create_model(
    name_or_spec: str | Path | dict | ArchSpec,
    num_joints: int = 17,
    weights: str | Path | None = None,
) -> nn.Module:
    """Build a model; with ``weights`` (a path or a weights name) load a checkpoint into it
    (strictly, shapes checked)."""
    is_super = isinstance(name_or_spec, str) and preset_name(name_or_spec) in SUPERNET_NAMES
    model: nn.Module = SuperLitePose(num_joints) if is_super else LitePose(resolve_spec(name_or_spec)[1], num_joints)
    model.keypoints = keypoint_set_for(num_joints)
    if weights is not None:
        from .checkpoint import _load_into, _read

        r = _read(weights)
        _load_into(model, r.state_dict, r.path)
        model.eval()
    return model
