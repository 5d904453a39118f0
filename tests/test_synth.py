"""SynthPose: determinism, COCO validity, label correctness, fixed difficulty, sequences, CLI round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from litepose.cli import main as cli
from litepose.data.coco import load_annotations
from litepose.data.keypoints import COCO
from litepose.data.synth import (
    DEFAULT_SIZE,
    MIN_AREA,
    MIN_VISIBLE,
    SYNTHPOSE_VERSION,
    make_synthpose,
    render_image,
    render_sequence,
    synthpose_version,
)

# pycocotools' mask.decode trips a numpy 2 DeprecationWarning inside its C extension (harmless).
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

W, H = DEFAULT_SIZE
N = 200


@pytest.fixture(scope="module")
def sample():
    return [render_image(11, i) for i in range(N)]


def _people(frame):
    return [a for a in frame.annotations if not a["iscrowd"]]


def test_deterministic_by_seed_and_index():
    a, b, c = render_image(3, 5), render_image(3, 5), render_image(4, 5)
    np.testing.assert_array_equal(a.image, b.image)
    assert a.annotations == b.annotations
    assert not np.array_equal(a.image, c.image)


def test_make_synthpose_is_reproducible_and_loads_in_pycocotools(tmp_path):
    from pycocotools.coco import COCO as PyCOCO

    p1 = make_synthpose(tmp_path / "a", 12, seed=7, progress=False)
    p2 = make_synthpose(tmp_path / "b", 12, seed=7, progress=False)
    assert p1.read_text() == p2.read_text()
    for name in ("000000.jpg", "000011.jpg"):
        assert (tmp_path / "a" / "images" / name).read_bytes() == (tmp_path / "b" / "images" / name).read_bytes()
    data = json.loads(p1.read_text())
    cat = data["categories"][0]
    assert cat["name"] == "person" and cat["keypoints"] == list(COCO.names)
    assert cat["skeleton"] == [[a + 1, b + 1] for a, b in COCO.skeleton]  # 1-based
    coco = PyCOCO(str(p1))
    assert len(coco.getImgIds()) == 12
    ann = load_annotations(p1)  # litepose's validating reader finds images/ by itself
    assert ann.keypoints is COCO
    img = ann.read_image(ann.image_ids[0])
    assert img.shape == (H, W, 3)
    assert ann.joints(ann.image_ids[0]).shape[1:] == (17, 3)


def test_labels_are_consistent(sample):
    for frame in sample:
        people = _people(frame)
        masks = []
        for a in people:
            k = np.asarray(a["keypoints"], float).reshape(17, 3)
            x, y, v = k.T
            assert a["num_keypoints"] == int((v > 0).sum())
            assert np.all((x[v == 0] == 0) & (y[v == 0] == 0))
            lab = v > 0
            assert np.all((x[lab] >= 0) & (x[lab] < W) & (y[lab] >= 0) & (y[lab] < H))
            bx, by, bw, bh = a["bbox"]
            vis = v == 2
            assert np.all((x[vis] >= bx) & (x[vis] <= bx + bw) & (y[vis] >= by) & (y[vis] <= by + bh))
            if a["num_keypoints"]:  # COCO's convention: only people big and visible enough carry keypoints
                assert a["area"] >= MIN_AREA and int(vis.sum()) >= MIN_VISIBLE
            else:
                assert not np.any(k)
            m = mask_utils.decode([a["segmentation"]])[:, :, 0]
            assert m.shape == (H, W)
            assert int(m.sum()) == a["area"] == int(mask_utils.area(a["segmentation"]))
            if a["area"]:
                np.testing.assert_allclose(mask_utils.toBbox(a["segmentation"]), a["bbox"], atol=0.01)
                # a visible joint lies on its own visible silhouette
                assert np.all(m[np.floor(y[vis]).astype(int), np.floor(x[vis]).astype(int)] == 1)
            masks.append(m)
        if masks:
            # visible silhouettes: no pixel belongs to two people (occlusion is applied to area/segmentation)
            assert np.stack(masks).sum(0).max() <= 1


def test_difficulty_is_fixed(sample):
    counts = np.array([len(_people(f)) for f in sample])
    assert counts.min() >= 1 and counts.max() <= 8
    assert counts.mean() >= 3.5
    heights = np.concatenate([np.asarray(f.heights) / H for f in sample])
    assert heights.min() >= 0.15 and heights.max() <= 0.9
    assert heights.min() < 0.2 and heights.max() > 0.85  # the whole range is used
    overlap = [any(h > 0.05 * s for h, s in zip(f.hidden_by_people, f.silhouette)) for f in sample]
    assert np.mean(overlap) >= 0.25
    v = np.concatenate([np.asarray(a["keypoints"]).reshape(-1, 3)[:, 2] for f in sample for a in _people(f)])
    assert (v == 1).sum() / (v > 0).sum() >= 0.10
    assert (v == 0).sum() > 0  # some joints fall outside the image
    crowds = [a for f in sample for a in f.annotations if a["iscrowd"]]
    assert 0 < len(crowds) < N / 3
    for a in crowds:
        assert a["num_keypoints"] == 0 and isinstance(a["segmentation"]["counts"], str) and a["area"] > 0


def test_unlabelled_people_follow_coco(sample):
    """Small or hidden figures stay as annotations (masked in training) but carry no keypoints."""
    people = [a for f in sample for a in _people(f)]
    unlabelled = [a for a in people if a["num_keypoints"] == 0]
    assert 0.1 < len(unlabelled) / len(people) < 0.45
    assert all(a["segmentation"]["counts"] for a in unlabelled)
    small = [a for a in people if 0 < a["area"] < MIN_AREA]
    assert small and all(a["num_keypoints"] == 0 for a in small)
    # occlusion among labelled people stays: hidden joints (v=1) are a real share of the labels
    v = np.concatenate([np.asarray(a["keypoints"]).reshape(-1, 3)[:, 2] for a in people if a["num_keypoints"]])
    assert (v == 1).sum() / (v > 0).sum() >= 0.10


def test_no_left_right_colour_cue_so_flips_stay_consistent(sample):
    """Left and right limbs look alike: a mirrored image with swapped labels is as plausible as the original."""
    diffs = []
    for f in sample:
        img = f.image.astype(int)
        for a in _people(f):
            k = np.asarray(a["keypoints"]).reshape(17, 3)
            for left, right in ((7, 8), (13, 14)):  # elbows, knees
                if k[left, 2] == 2 and k[right, 2] == 2:
                    lx, ly = np.floor(k[left, :2]).astype(int)
                    rx, ry = np.floor(k[right, :2]).astype(int)
                    diffs.append(img[ly, lx] - img[ry, rx])
    d = np.asarray(diffs)
    assert len(d) > 100
    # version 1 drew the left limbs lighter: a mean difference of about +60 per channel
    assert np.all(np.abs(d.mean(0)) < 6)
    assert np.mean(np.abs(d).sum(1) <= 12) > 0.8  # most pairs are the very same colour


def test_version_is_recorded(tmp_path):
    make_synthpose(tmp_path / "v", 1, progress=False)
    assert synthpose_version(tmp_path / "v") == SYNTHPOSE_VERSION == 2
    assert synthpose_version(tmp_path / "missing") is None


def test_sequence_moves_smoothly_and_keeps_identity():
    frames = list(render_sequence(2, 0, 12))
    tracks = [{a["track_id"]: a for a in _people(f)} for f in frames]
    ids = set(tracks[0])
    assert len(ids) == len(_people(frames[0])) and all(set(t) == ids for t in tracks)
    for prev, cur in zip(tracks, tracks[1:]):
        for tid in ids:
            p = np.asarray(prev[tid]["keypoints"]).reshape(17, 3)
            c = np.asarray(cur[tid]["keypoints"]).reshape(17, 3)
            both = (p[:, 2] > 0) & (c[:, 2] > 0)
            if both.any():
                assert np.abs(c[both, :2] - p[both, :2]).max() < 0.08 * W
    moved = [np.abs(np.asarray(tracks[-1][t]["bbox"][:2]) - tracks[0][t]["bbox"][:2]).max() for t in ids]
    assert max(moved) > 5  # people do move


def test_sequence_files(tmp_path):
    path = make_synthpose(tmp_path / "s", 7, seed=1, sequence=3, progress=False)
    data = json.loads(path.read_text())
    assert [(im["vid_id"], im["frame_id"]) for im in data["images"]] == [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1),
                                                                         (2, 2), (3, 0)]  # fmt: skip
    vid = {im["id"]: im["vid_id"] for im in data["images"]}
    by_track = {}
    for a in data["annotations"]:
        if not a["iscrowd"]:
            by_track.setdefault(a["track_id"], set()).add(vid[a["image_id"]])
    assert all(len(v) == 1 for v in by_track.values())  # a track stays in its sequence


def test_size_option_and_errors(tmp_path):
    frame = render_image(0, 0, "160x128")
    assert frame.image.shape == (128, 160, 3)
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        render_image(0, 0, "160by128")
    with pytest.raises(ValueError, match="num_images"):
        make_synthpose(tmp_path / "x", 0)


def test_cli_synth_then_val_gt_scores_one(tmp_path, capsys):
    out = tmp_path / "S"
    assert cli(["synth", "--output", str(out), "--num-images", "200", "--seed", "1"]) == 0
    assert len(list((out / "images").glob("*.jpg"))) == 200
    capsys.readouterr()
    assert cli(["val", "--data", str(out), "--gt-as-results"]) == 0
    text = capsys.readouterr().out
    assert "coco keypoint protocol: 200 images" in text
    lines = {ln.split()[0]: ln.split()[-1] for ln in text.splitlines() if ln.strip()}
    assert lines["AP"] == "1.000" and lines["AR"] == "1.000"
