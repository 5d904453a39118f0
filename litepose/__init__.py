"""litepose: real-time multi-person 2D human pose estimation (LitePose, CVPR 2022).

Public API (imported on first use, so ``import litepose`` is cheap):

- ``create_model(name_or_spec, num_joints=17, weights=None)`` -> ``LitePose`` (or ``SuperLitePose``);
  ``list_models()``: the names it takes; ``ArchSpec``: an architecture
- ``load_checkpoint(path_or_name, arch=None, num_joints=None)`` -> ``(model, info)``; names such as
  ``litepose-xs-coco`` download once into ``$LITEPOSE_HOME`` (``list_weights()``, ``download_weights(name)``);
  unreadable files raise ``CheckpointError``, unknown or failed names ``WeightsError``
- ``save_checkpoint(model, path, extra=None)``: a self-describing checkpoint (``extra``: a dict of
  plain values stored with it)
- ``LitePose``, ``SuperLitePose``, ``extract_subnet(supernet, arch)``, ``fold_batchnorm(model)``,
  ``profile_model(name_or_spec, num_joints=17, input_size=None)``: params and MACs
- ``Predictor``: images in, people out
- ``stream(source, predictor, output=None, track=False, ...)``: a predictor over an image, folder,
  glob, video or webcam, one ``FrameResult`` per frame (arrays, timings, drawing, JSON), with
  overlays, videos, JSON lines and results.json written as it goes (what ``litepose predict`` runs)
- ``evaluate(results_or_predictor, data, protocol=None)``: COCO / CrowdPose metrics
- ``KeypointSet``, ``COCO``, ``CROWDPOSE``: keypoint metadata
- ``Tracker(keypoints, config=None, smooth=None)``: stable ids (and One-Euro smoothing) for the
  people of each video frame; ``TrackerConfig``, ``OneEuroConfig`` its parameters

Subpackages, also reachable as attributes (``litepose.decode.group``): ``data``, ``decode``,
``engine``, ``eval``, ``models``, ``track``, ``viz``, and the modules ``media`` (reading images and videos),
``device`` (device choice), ``normalization`` (input statistics), ``home`` (the cache folder),
``files`` (atomic writes, output-folder locks: never a half file, never an input replaced),
``predictor``, ``pipeline`` (sources, results and sinks of ``stream``), ``interrupt`` (the SIGINT /
SIGTERM policy), ``errors`` (one-line messages).
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
    "stream": "litepose.pipeline",
    "FrameResult": "litepose.pipeline",
    "evaluate": "litepose.eval",
    "KeypointSet": "litepose.data.keypoints",
    "COCO": "litepose.data.keypoints",
    "CROWDPOSE": "litepose.data.keypoints",
    "Tracker": "litepose.track",
    "TrackerConfig": "litepose.track",
    "OneEuroConfig": "litepose.track",
}

#: Public subpackages and modules, imported when first used as ``litepose.<name>``.
SUBMODULES = (
    "data", "decode", "engine", "eval", "models", "track", "viz", "media", "device", "normalization", "home", "files",
    "predictor", "pipeline", "interrupt", "errors",
)  # fmt: skip

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'litepose' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, *SUBMODULES})
