"""Data: keypoint metadata, datasets, training transforms and targets, SynthPose.

``KeypointSet`` & co. are imported eagerly (cheap); the dataset, file reader, transforms and
targets are imported on first use, so importing keypoint metadata does not pull in torch/OpenCV.
"""

from __future__ import annotations

import importlib
from typing import Any

from .keypoints import COCO, CROWDPOSE, KeypointSet, KeypointSetError, get_keypoint_set, keypoint_set_for

_LAZY = {
    "load_keypoint_set": "description",
    "KeypointAnnotations": "coco",
    "load_annotations": "coco",
    "KeypointDataset": "dataset",
    "MultiSizeBatchSampler": "dataset",
    "TransformConfig": "transforms",
    "TrainTransform": "transforms",
    "render_heatmaps": "targets",
    "joints_table": "targets",
}

__all__ = ["COCO", "CROWDPOSE", "KeypointSet", "KeypointSetError", "get_keypoint_set", "keypoint_set_for", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
