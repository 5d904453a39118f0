"""Evaluation: COCO keypoint AP/AR and the CrowdPose protocol (see :mod:`litepose.eval.evaluate`)."""

from .evaluate import (
    CROWD_INDEX_THRESHOLDS,
    METRIC_KEYS,
    PROTOCOLS,
    default_protocol,
    evaluate,
    format_metrics,
    gt_as_results,
    load_eval_data,
    load_results,
)

__all__ = [
    "evaluate",
    "gt_as_results",
    "load_results",
    "load_eval_data",
    "default_protocol",
    "format_metrics",
    "PROTOCOLS",
    "METRIC_KEYS",
    "CROWD_INDEX_THRESHOLDS",
]
