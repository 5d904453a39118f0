"""Evaluation: COCO keypoint AP/AR and the CrowdPose protocol (see :mod:`litepose.eval.evaluate`)."""

from .evaluate import *  # noqa: F403 (the public names are listed once, in evaluate.__all__)
from .evaluate import __all__  # noqa: F401
