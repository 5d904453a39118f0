"""Data: keypoint metadata, datasets, training transforms and targets, SynthPose."""

from .keypoints import COCO, CROWDPOSE, KeypointSet, get_keypoint_set, keypoint_set_for

__all__ = ["COCO", "CROWDPOSE", "KeypointSet", "get_keypoint_set", "keypoint_set_for"]
