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


def test_drawing_in_place_on_a_bgr_frame_equals_drawing_a_copy_of_the_rgb_one():
    from litepose.viz import draw_people_into

    coco = get_keypoint_set("coco")
    rng = np.random.default_rng(0)
    people = [_person(20, 0.9), {**_person(90, 0.8), "track_id": 4}]
    for shape in ((120, 160, 3), (720, 1440, 3)):  # anti-aliased, and the 8-connected lines of large frames
        rgb = rng.integers(0, 255, shape, np.uint8)
        want = draw_people(rgb, people, coco)
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        out = draw_people_into(bgr, people, coco, bgr=True)
        assert out is bgr and not np.array_equal(bgr[:, :, ::-1], rgb)  # drawn in place
        np.testing.assert_array_equal(bgr[:, :, ::-1], want)


def test_joints_under_the_threshold_are_not_drawn():
    coco = get_keypoint_set("coco")
    img = np.zeros((120, 160, 3), np.uint8)
    p = _person(20, 0.9)
    p["keypoints"][:, 2] = 0.05
    assert not draw_people(img, [p], coco, kpt_threshold=0.1).any()
    p["keypoints"][:2, 2] = 0.5  # two joints: their dots, no limb between them that is not both
    drawn = draw_people(img, [p], coco, kpt_threshold=0.1)
    assert drawn.any() and not drawn[60:].any()
