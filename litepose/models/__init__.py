"""The LitePose model family: networks, supernet, checkpoints, BN folding and profiling.

``create_model(name_or_spec, num_joints=17, weights=None)`` is the entry point: a preset name
(``litepose-xs``/``-s``/``-m``/``-l``, or ``xs`` ...), ``litepose-super`` for the supernet, a path
to an architecture JSON in the original's format, a JSON dict, or an :class:`ArchSpec`.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..data.keypoints import keypoint_set_for
from .checkpoint import CheckpointError, load_checkpoint, read_state_dict, save_checkpoint
from .fold import fold_batchnorm
from .litepose import LitePose
from .profile import Profile, profile_model
from .spec import PRESETS, ArchSpec, StageSpec, preset_name, resolve_spec
from .supernet import SuperLitePose, extract_subnet, sample_arch

__all__ = [
    "ArchSpec",
    "StageSpec",
    "PRESETS",
    "LitePose",
    "SuperLitePose",
    "CheckpointError",
    "Profile",
    "create_model",
    "list_models",
    "load_checkpoint",
    "save_checkpoint",
    "extract_subnet",
    "sample_arch",
    "fold_batchnorm",
    "profile_model",
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
    """Build a model; with ``weights`` load a checkpoint into it (strictly, shapes checked)."""
    is_super = isinstance(name_or_spec, str) and preset_name(name_or_spec) in SUPERNET_NAMES
    model: nn.Module = SuperLitePose(num_joints) if is_super else LitePose(resolve_spec(name_or_spec)[1], num_joints)
    model.keypoints = keypoint_set_for(num_joints)
    if weights is not None:
        from .checkpoint import _load_into

        sd, _ = read_state_dict(weights)
        _load_into(model, sd, Path(weights))
        model.eval()
    return model
