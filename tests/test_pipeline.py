"""The library runner (``litepose.stream``): a source in, one FrameResult per image or frame out,
with tracking, overlays, videos, JSON lines and results.json written as it goes."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

import litepose
from litepose.media import VideoReader

pytestmark = pytest.mark.usefixtures("one_thread")


def _clip(tmp_path, images, repeat: int) -> object:
    """An mp4 showing each image ``repeat`` times (people standing still)."""
    path = tmp_path / "still.mp4"
    first = cv2.imread(str(images[0]))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (first.shape[1], first.shape[0]))
    for img in images:
        frame = cv2.imread(str(img))
        for _ in range(repeat):
            writer.write(frame)
    writer.release()
    return path


def test_a_video_with_tracking_in_five_lines(tiny_trained_run, tmp_path) -> None:
    images = sorted((tiny_trained_run.parent / "synth" / "images").glob("*.jpg"))[:3]
    video = _clip(tmp_path, images, repeat=4)
    predictor = litepose.Predictor(str(tiny_trained_run / "best.pth"), flip_test=False)

    # the docs/inference.md example, as is
    with litepose.stream(video, predictor, track=True, output=tmp_path / "out") as frames:
        results = [(r.index, r.keypoints, r.boxes, r.scores, r.track_ids) for r in frames]
    summary = frames.summary()

    assert [i for i, *_ in results] == list(range(12))
    for _, kp, boxes, scores, ids in results:
        assert kp.shape[1:] == (17, 3) and len(kp) == len(boxes) == len(scores) == len(ids)
    assert sum(len(kp) for _, kp, *_ in results) == summary["people"] > 0
    ids = [set(t[t >= 0].tolist()) for *_, t in results]
    assert any(ids) and ids[3] == ids[2]  # the same still people keep their ids within an image's frames
    lines = [json.loads(line) for line in (tmp_path / "out" / "still.jsonl").read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(12))
    assert [len(line["people"]) for line in lines] == [len(kp) for _, kp, *_ in results]
    assert len(list(VideoReader(tmp_path / "out" / "still.mp4"))) == 12
    assert summary["video_frames"] == 12 and summary["tracks"] >= 1 and "stopped" not in summary


def test_images_give_results_that_draw_and_serialise_themselves(tiny_trained_run, tmp_path) -> None:
    folder = tiny_trained_run.parent / "synth" / "images"
    predictor = litepose.Predictor(str(tiny_trained_run / "best.pth"), flip_test=False)
    run = litepose.stream(folder, predictor, output=tmp_path / "out", save_json=True)
    results = list(run)
    assert len(results) == len(list(folder.glob("*.jpg"))) and run.images == len(results)
    r = max(results, key=lambda r: len(r.people))
    assert len(r.people) > 0 and r.path is not None and r.timings["network"] > 0
    assert not np.array_equal(r.draw(), r.image)  # a skeleton was drawn
    line = r.json_line()
    assert line["file_name"] == r.path.name and len(line["people"]) == len(r.people)
    coco = r.coco(7)
    assert [c["image_id"] for c in coco] == [7] * len(r.people) and len(coco[0]["keypoints"]) == 51
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(saved) == sum(len(x.people) for x in results)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.jpg")) == sorted(p.name for p in folder.glob("*.jpg"))
    assert not (tmp_path / "out" / ".litepose.lock").exists()  # iteration to the end released the folder


def test_without_an_output_nothing_is_written_and_a_break_releases_the_folder(tiny_trained_run, tmp_path) -> None:
    folder = tiny_trained_run.parent / "synth" / "images"
    predictor = litepose.Predictor(str(tiny_trained_run / "best.pth"), flip_test=False)
    first = next(iter(litepose.stream(folder, predictor)))
    assert first.index == 0 and first.keypoints.ndim == 3
    run = litepose.stream(folder, predictor, output=tmp_path / "out")
    for _ in run:
        break
    assert not (tmp_path / "out" / ".litepose.lock").exists() and len(list((tmp_path / "out").glob("*.jpg"))) == 1
