"""Tracking (issue 15): identities through crossings and occlusions, One-Euro smoothing, the OKS
fed to motmetrics, ``val --track`` and ``predict --track --smooth`` on both real videos."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from conftest import shared

import litepose
from litepose.cli import main
from litepose.data.keypoints import COCO
from litepose.data.synth import make_synthpose
from litepose.eval import load_eval_data
from litepose.track import OneEuroConfig, OneEuroFilter, Tracker, TrackerConfig
from litepose.track import evaluate as te

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory):
    """Four SynthPose clips of 30 frames (the issue's sequence length)."""
    out = tmp_path_factory.mktemp("clips")
    make_synthpose(out, 120, seed=4, sequence=30, progress=False)
    return out


@pytest.fixture(scope="module")
def clips(clips_dir):
    ann = load_eval_data(clips_dir)
    return ann, te.load_clips(ann)


def _pelvis_x(kp: np.ndarray) -> float:
    return float(kp[[11, 12], 0].mean())


def test_identities_survive_crossings_and_short_occlusions(clips):
    ann, all_clips = clips
    # crossings: two people whose left-right order swaps within a clip
    crossings = 0
    for c in all_clips:
        first, last = {}, {}
        for ids, kps in zip(c.ids, c.keypoints):
            for i, kp in zip(ids, kps):
                first.setdefault(int(i), _pelvis_x(kp))
                last[int(i)] = _pelvis_x(kp)
        people = sorted(set(first) & set(last))
        crossings += sum(1 for a in people for b in people if a < b and (first[a] - first[b]) * (last[a] - last[b]) < 0)
    assert crossings >= 2, "the test clips should hold people whose paths cross"

    # a short occlusion: in each clip, a person seen in frames 9 and 15 vanishes from the detections for frames 10-14
    tracker = Tracker(ann.keypoints)
    switches = 0
    for c in all_clips:
        both = sorted(set(c.ids[9].tolist()) & set(c.ids[15].tolist()))
        assert both
        hidden = {int(both[0]): range(10, 15)}
        tracker.reset()
        given: dict[int, int] = {}
        for f, (ids, kps) in enumerate(zip(c.ids, c.keypoints)):
            people, owners = [], []
            for g, kp in zip(ids, kps):
                if f in hidden.get(int(g), ()):
                    continue
                d = kp.copy()
                d[:, 2] = (kp[:, 2] > 0).astype(float)
                people.append({"keypoints": d, "score": 1.0})
                owners.append(int(g))
            for g, p in zip(owners, tracker.update(people)):
                if p["track_id"] is None:
                    continue
                if given.setdefault(g, p["track_id"]) != p["track_id"]:
                    switches += 1
                    given[g] = p["track_id"]
        for g in hidden:
            assert g in given  # the hidden person was tracked, and kept its id after coming back
    assert switches == 0


def test_perturbed_ground_truth_keeps_identities(clips):
    ann, all_clips = clips
    det = te.perturbed_detections(all_clips, seed=0)
    again = te.perturbed_detections(all_clips, seed=0)
    assert again[1][3][0]["keypoints"].tolist() == det[1][3][0]["keypoints"].tolist()  # seeded
    m = te.evaluate_tracking(all_clips, det, ann.keypoints)
    for side in ("raw", "smoothed"):
        assert m[side]["idf1"] >= 0.9
        assert m[side]["switches_per_100_track_frames"] < 1.0
    # smoothing: jitter at least halved, at most one frame of lag, and the joints nearer the truth
    assert m["jitter_reduction"] >= 0.5
    assert m["raw"]["lag_frames"] == 0 and 0 <= m["smoothed"]["lag_frames"] <= 1
    assert m["smoothed"]["error_px"] < m["raw"]["error_px"]


def test_smoothing_lowers_jitter_on_a_noisy_track_without_lag():
    rng = np.random.default_rng(0)
    frames, k = 120, COCO.num_joints
    base = rng.uniform(0, 80, (k, 2)) + 200
    truth = [base + (3.0 * f, 8.0 * math.sin(f / 8)) for f in range(frames)]
    noisy = [t + rng.normal(0, 3.0, t.shape) for t in truth]
    out = {}
    for smooth in (False, True):
        tracker = Tracker(COCO, smooth=smooth)
        out[smooth] = [tracker.update([{"keypoints": np.column_stack([x, np.ones(k)])}])[0] for x in noisy]
    xy = {s: np.array([p["keypoints"][:, :2] for p in out[s]]) for s in out}
    jitter = {s: np.linalg.norm(xy[s][2:] - 2 * xy[s][1:-1] + xy[s][:-2], axis=-1).mean() for s in xy}
    assert jitter[True] < 0.5 * jitter[False]
    truth = np.array(truth)

    def best_shift(x):
        errs = {d: np.linalg.norm(x[10 + d :] - truth[10 : frames - d], axis=-1).mean() for d in range(0, 4)}
        return min(errs, key=errs.get)

    assert best_shift(xy[False]) == 0 and best_shift(xy[True]) <= 1
    assert {p["track_id"] for p in out[True][1:]} == {1}


def test_a_missing_joint_does_not_pull_its_filter_toward_zero():
    f = OneEuroFilter(2, OneEuroConfig())
    valid = np.array([True, True])
    for n in range(10):
        f(np.array([[100.0 + n, 50.0], [200.0, 80.0]]), valid, n / 30, 50.0)
    gone = np.array([True, False])
    for n in range(10, 14):  # joint 1 missing (a decoder's zeros): passed through, the filter untouched
        out = f(np.array([[100.0 + n, 50.0], [0.0, 0.0]]), gone, n / 30, 50.0)
        assert out[1].tolist() == [0.0, 0.0]
    back = f(np.array([[114.0, 50.0], [201.0, 80.0]]), valid, 14 / 30, 50.0)
    assert abs(back[1, 0] - 200.5) < 1.0 and abs(back[1, 1] - 80.0) < 1e-6


def test_oks_fed_to_motmetrics_matches_a_hand_computation():
    # one ground-truth person with 3 labelled joints, one hypothesis; the rest unlabelled / missing
    k = COCO.num_joints
    gt = np.zeros((1, k, 3))
    gt[0, [0, 5, 11]] = [[100, 100, 2], [90, 130, 2], [95, 190, 1]]
    area = 2500.0
    hyp = gt.copy()
    hyp[0, 0, :2] += (1, 1)  # sqrt(2) px off
    hyp[0, 5, :2] += (0, 2)  # 2 px off
    hyp[0, 11, 2] = 0  # missing: counts 0
    hyp[0, 1:5, 2] = 1  # joints the ground truth has not labelled: ignored
    s = COCO.sigmas
    hand = (math.exp(-2 / (2 * area * (2 * s[0]) ** 2)) + math.exp(-4 / (2 * area * (2 * s[5]) ** 2)) + 0) / 3
    valid = hyp[..., 2] > 0.1
    sim = te.similarity_matrix(gt, np.array([area]), hyp, valid, COCO.sigmas)
    assert sim.shape == (1, 1) and sim[0, 0] == pytest.approx(hand, rel=1e-9)
    # through motmetrics: MOTP is the mean distance 1 - OKS of the matches
    clip = te.Clip("v", [1, 2], [np.array([7]), np.array([7])], [gt, gt], [np.array([area])] * 2, (320, 256))
    people = {"keypoints": hyp[0], "score": 1.0, "track_id": 3}
    m = te.tracking_metrics([clip], [[[people], [people]]], COCO)
    assert m["motp"] == pytest.approx(1 - hand, abs=1e-4)
    assert m["idf1"] == 1.0 and m["num_switches"] == 0 and m["mota"] == 1.0
    # under the match threshold (OKS 0.5) the pair cannot match: a miss and a false positive
    far = dict(people, keypoints=hyp[0] + [[40, 0, 0]])
    m = te.tracking_metrics([clip], [[[far], [far]]], COCO)
    assert m["num_misses"] == 2 and m["num_false_positives"] == 2


def test_tracker_api_births_ids_and_inputs():
    k = COCO.num_joints
    rng = np.random.default_rng(1)
    a = np.column_stack([rng.uniform(0, 50, (k, 2)) + 100, np.ones(k)])
    b = np.column_stack([rng.uniform(0, 50, (k, 2)) + 400, np.ones(k)])
    tracker = litepose.Tracker("coco", TrackerConfig(min_hits=2, max_misses=2, coast=0))
    assert [p["track_id"] for p in tracker.update([{"keypoints": a, "score": 0.9}])] == [None]  # tentative
    assert [p["track_id"] for p in tracker.update([{"keypoints": a, "score": 0.9}])] == [1]
    out = tracker.update(np.stack([b, a]))  # an array of poses works too; the order is the input's
    assert [p["track_id"] for p in out] == [None, 1]
    assert tracker.update([b, a])[0]["track_id"] == 2
    for _ in range(3):
        tracker.update([b])  # a is gone for longer than max_misses: its track ends
    assert [p["track_id"] for p in tracker.update([a, b])] == [None, 2]
    assert [p["track_id"] for p in tracker.update([a, b])] == [3, 2]  # ids are never reused
    assert tracker.born == 3 and tracker.update([]) == []
    with pytest.raises(ValueError, match="keypoints of shape"):
        tracker.update([np.zeros((5, 3))])
    with pytest.raises(ValueError, match="min_hits"):
        TrackerConfig(min_hits=0)


def test_min_similarity_zero_is_refused_by_library_and_cli(tmp_path, capsys):
    """At min_similarity 0 every pair matches (OKS > 0 at any distance): a pose 500 px away took an
    existing id. The library and the CLI refuse it, naming the field and its range."""
    k = COCO.num_joints
    rng = np.random.default_rng(3)
    a = np.column_stack([rng.uniform(0, 50, (k, 2)) + 100, np.ones(k)])
    far = a + [500, 500, 0]
    for bad in (0, 0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"min_similarity=.* \(must be in \(0, 1\]"):
            TrackerConfig(min_similarity=bad)
    tracker = litepose.Tracker("coco", TrackerConfig(min_similarity=1e-9, min_hits=1, coast=0))
    assert tracker.update([a])[0]["track_id"] == 1
    assert tracker.update([far])[0]["track_id"] != 1  # a smallest allowed threshold still refuses a disjoint pose

    image = tmp_path / "frame.png"
    import cv2

    cv2.imwrite(str(image), np.zeros((64, 64, 3), np.uint8))
    code = main(["predict", str(image), "--model", "litepose-xs", "--track", "--min-similarity", "0",
                 "--output", str(tmp_path / "out")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "min_similarity=0.0 (must be in (0, 1]" in err and "Traceback" not in err


def test_a_missed_frame_is_filled_by_the_predicted_pose():
    k = COCO.num_joints
    rng = np.random.default_rng(2)
    base = np.column_stack([rng.uniform(0, 60, (k, 2)) + 100, np.full(k, 0.8)])
    step = np.array([3.0, 1.0])

    def at(f: int) -> np.ndarray:
        kp = base.copy()
        kp[:, :2] += f * step
        return kp

    tracker = Tracker("coco", TrackerConfig(min_hits=2, coast=1))
    for f in range(4):
        (p,) = tracker.update([{"keypoints": at(f), "score": 0.7}])
    assert p["track_id"] == 1 and "predicted" not in p
    (gap,) = tracker.update([])  # the detector misses the person for one frame: the track's prediction
    assert gap["track_id"] == 1 and gap["predicted"] is True and gap["score"] == pytest.approx(0.7)
    np.testing.assert_allclose(gap["keypoints"][:, :2], at(4)[:, :2], atol=1e-3)  # constant velocity
    np.testing.assert_allclose(gap["keypoints"][:, 2], 0.8, atol=1e-6)
    assert tracker.update([]) == []  # a second missed frame in a row is beyond coast=1: nothing is made up
    (back,) = tracker.update([{"keypoints": at(6), "score": 0.7}])
    assert back["track_id"] == 1 and "predicted" not in back  # and the person comes back with the id
    assert Tracker("coco", TrackerConfig(coast=0)).update([]) == []
    with pytest.raises(ValueError, match="coast"):
        TrackerConfig(coast=-1)


def test_val_track_cli(clips_dir, tmp_path, capsys):
    args = ["val", "--data", str(clips_dir), "--track", "--gt-as-results", "--perturb", "--seed", "3", "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == first  # seeded
    assert first["clips"] == 4 and first["frames"] == 120 and first["similarity"] == "oks"
    assert first["raw"]["idf1"] > 0.9 and first["smoothed"]["jitter"] < first["raw"]["jitter"]
    assert first["hota"] is None and "fork" in first["hota_note"]
    assert main(["val", "--data", str(clips_dir), "--track", "--gt-as-results", "--output", str(tmp_path / "o")]) == 0
    text = capsys.readouterr().out
    assert "IDF1" in text and "motmetrics" in text and (tmp_path / "o" / "tracking.json").is_file()
    assert main(["val", "--data", str(clips_dir), "--gt-as-results", "--perturb"]) == 2
    assert "--perturb perturbs the ground truth" in capsys.readouterr().err


def test_predict_track_on_frames_then_val_results(tmp_path, capsys):
    """A folder of frames through ``predict --track``; its JSON lines scored by ``val --track --results``."""
    data = tmp_path / "clips"
    make_synthpose(data, 12, seed=1, size=(160, 128), sequence=6, progress=False)
    out = tmp_path / "out"
    weights = str(shared("ref/model_XS_17.pth"))
    code = main(["predict", str(data / "images"), "--weights", weights, "--input-size", "128", "--no-flip",
                 "--track", "--smooth", "--output", str(out), "--json"])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    lines = [json.loads(x) for x in (out / "images.jsonl").read_text().splitlines()]
    assert summary["frames_jsonl"] == str(out / "images.jsonl") and len(lines) == 12
    assert lines[0]["file_name"] == "000000.jpg" and all("track_id" in p for x in lines for p in x["people"])
    assert main(["val", "--data", str(data), "--track", "--results", str(out / "images.jsonl"), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert "given" in m and m["given"]["track_frames"] > 0
    assert main(["predict", str(data / "images"), "--model", "litepose-xs", "--smooth", "--output", str(out)]) == 2
    assert "--smooth smooths tracks: give --track too" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"file_name": "nope.jpg", "people": []}\n')
    assert main(["val", "--data", str(data), "--track", "--results", str(bad)]) == 2
    assert "bad.jsonl, line 1: not a frame" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["mmaction2_demo_skeleton_two_people.mp4", "mmpose_demo_street_walking.mp4"])
def test_real_videos_track_and_smooth_end_to_end(tmp_path, capsys, name):
    import cv2

    video = shared(f"data/video/{name}")
    out = tmp_path / "out"
    weights = str(shared("ref/model_XS_17.pth"))
    code = main(["predict", str(video), "--weights", weights, "--input-size", "128", "--no-flip", "--threshold", "0.3",
                 "--track", "--smooth", "--show", "--output", str(out), "--json"])  # fmt: skip
    assert code == 0
    cap = capsys.readouterr()
    if not os.environ.get("DISPLAY"):
        assert "--show: no display ($DISPLAY is not set)" in cap.err
    summary = json.loads(cap.out)
    lines = [json.loads(x) for x in (out / f"{video.stem}.jsonl").read_text().splitlines()]
    frames = int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT))
    assert len(lines) == frames == summary["video_frames"]
    ids = [p["track_id"] for x in lines for p in x["people"]]
    assert all(i is None or isinstance(i, int) for i in ids) and summary["tracks"] >= 1
    assert any(isinstance(i, int) for i in ids)
    reader = cv2.VideoCapture(str(out / f"{video.stem}.mp4"))
    assert int(reader.get(cv2.CAP_PROP_FRAME_COUNT)) == frames


def test_newest_frame_reader_drops_frames_instead_of_falling_behind(tmp_path):
    """The webcam reader (``VideoReader(latest=True)``) with a consumer slower than the source."""
    import time

    import cv2

    from litepose.media import VideoReader

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for i in range(40):
        writer.write(np.full((48, 64, 3), 5 * i, np.uint8))
    writer.release()
    reader = VideoReader(path, latest=True)
    got = []
    for frame in reader:
        got.append(int(frame[0, 0, 0]))
        time.sleep(0.02)
    assert reader.dropped > 0 and reader.decoded == len(got) and reader.decoded + reader.dropped == 40
    assert got == sorted(got) and abs(got[-1] - 195) <= 4  # in order, ending with the newest (JPEG-coded) frame
    assert len(list(VideoReader(path))) == 40  # a file read normally keeps every frame
