"""Overlays: what is drawn and what is left out."""

from __future__ import annotations

import numpy as np
import pytest

from litepose.data.keypoints import get_keypoint_set
from litepose.viz import draw_people


def _person(x0: float, score: float, k: int = 17) -> dict:
    kp = np.zeros((k, 3), np.float32)
    kp[:, 0] = x0 + np.arange(k) % 4 * 6
    kp[:, 1] = 20 + np.arange(k) * 4
    kp[:, 2] = 0.9
    return {"keypoints": kp, "score": score}


def test_min_score_leaves_unsure_people_out_and_keeps_colours():
    coco = get_keypoint_set("coco")
    img = np.zeros((120, 160, 3), np.uint8)
    sure, unsure = _person(20, 0.7), _person(100, 0.1)
    both = draw_people(img, [unsure, sure], coco)
    only_sure = draw_people(img, [sure], coco)
    filtered = draw_people(img, [unsure, sure], coco, min_score=0.3)
    assert both[:, 90:].any()  # the unsure person is drawn without a threshold
    assert not filtered[:, 90:].any()  # and left out with one
    np.testing.assert_array_equal(filtered, only_sure)  # the first drawn person takes the first colour
    assert draw_people(img, [sure["keypoints"]], coco, min_score=0.99).any()  # bare arrays have no score


def test_wrong_number_of_joints_is_an_error():
    with pytest.raises(ValueError, match="keypoint set"):
        draw_people(np.zeros((8, 8, 3), np.uint8), [_person(0, 1.0, k=14)], get_keypoint_set("coco"))
