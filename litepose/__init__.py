"""litepose: real-time multi-person 2D human pose estimation (LitePose, CVPR 2022).

Public API (imported lazily, so ``import litepose`` is cheap):

- ``create_model(name_or_spec, num_joints=17, weights=None)`` -> ``LitePose``
- ``load_checkpoint(path_or_name, arch=None, num_joints=None)`` -> ``(model, info)``; names such as
  ``litepose-xs-coco`` download once into ``$LITEPOSE_HOME`` (``list_weights()``, ``download_weights(name)``)
- ``save_checkpoint(model, path, **extra)``: a self-describing checkpoint
- ``LitePose``, ``SuperLitePose``, ``extract_subnet(supernet, arch)``, ``fold_batchnorm(model)``
- ``Predictor``: images in, people out
- ``evaluate(results_or_predictor, data, protocol=None)``: COCO / CrowdPose metrics
- ``KeypointSet``, ``COCO``, ``CROWDPOSE``: keypoint metadata
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "create_model": "litepose.models",
    "load_checkpoint": "litepose.models",
    "save_checkpoint": "litepose.models",
    "list_models": "litepose.models",
    "LitePose": "litepose.models",
    "SuperLitePose": "litepose.models",
    "extract_subnet": "litepose.models",
    "fold_batchnorm": "litepose.models",
    "ArchSpec": "litepose.models",
    "CheckpointError": "litepose.models",
    "WeightsError": "litepose.models",
    "list_weights": "litepose.models",
    "download_weights": "litepose.models",
    "profile_model": "litepose.models",
    "Predictor": "litepose.predictor",
    "evaluate": "litepose.eval",
    "KeypointSet": "litepose.data.keypoints",
    "COCO": "litepose.data.keypoints",
    "CROWDPOSE": "litepose.data.keypoints",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'litepose' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
