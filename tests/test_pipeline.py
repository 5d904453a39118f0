"""The library runner (``litepose.stream``): a source in, one FrameResult per image or frame out,
with tracking, overlays, videos, JSON lines and results.json written as it goes."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import re
import signal
import socket
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import shared, signal_policy

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


# -- video throughput: reading ahead, drawing and writing behind, per-stage figures ---------------------------

FAST = ["--model", "litepose-xs", "--input-size", "64", "--no-flip", "--threads", "1"]


def _noise_clip(path, frames: int, h: int = 48, w: int = 64) -> object:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (w, h))
    rng = np.random.default_rng(1)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (h, w, 3), np.uint8))
    writer.release()
    return path


def test_video_summary_gives_frames_per_second_and_stage_medians_and_no_video_skips_the_overlay(
    tmp_path, capsys
) -> None:
    from litepose.cli import main

    clip = _noise_clip(tmp_path / "clip.mp4", 6)
    out = tmp_path / "out"
    assert main(["predict", str(clip), *FAST, "--output", str(out), "--json"]) == 0
    video = json.loads(capsys.readouterr().out)["video"]
    assert video["frames"] == 6 and video["fps"] > 0 and video["inference_fps"] > 0
    assert set(video["median_ms"]) == {"read", "preprocess", "network", "decode", "draw", "write"}
    assert len(list(VideoReader(out / "clip.mp4"))) == 6

    out2 = tmp_path / "out2"
    assert main(["predict", str(clip), *FAST, "--output", str(out2), "--no-video"]) == 0
    line = capsys.readouterr().out
    assert "frames/s end to end, inference alone allows" in line and "network" in line and "draw" not in line
    assert not (out2 / "clip.mp4").exists() and len((out2 / "clip.jsonl").read_text().splitlines()) == 6


class _StopAt:
    """A predictor that asks to stop (as SIGTERM does) ``times`` times while predicting frame ``n``."""

    def __init__(self, predictor, n: int, times: int) -> None:
        self.inner, self.n, self.times, self.calls = predictor, n, times, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, rgb):
        from litepose import interrupt

        people = self.inner(rgb)
        if self.calls == self.n:
            for _ in range(self.times):
                interrupt.request_stop(signal.SIGTERM)
        self.calls += 1
        return people


@pytest.mark.parametrize("times", [1, 2])
def test_a_stop_keeps_a_playable_video_of_the_frames_finished(tmp_path, times) -> None:
    """One signal: the frame in hand is finished and every frame queued for the writer thread is
    written (video frames == JSON lines). A second: the writer stops after its current frame, and
    what it wrote is still a playable video under its own name."""
    from litepose import interrupt

    clip = _noise_clip(tmp_path / "clip.mp4", 40)
    out = tmp_path / "out"
    inner = litepose.Predictor(str(shared("ref/model_XS_17.pth")), input_size=64, flip_test=False)
    stream = litepose.stream(clip, inner, output=out)
    stream.predictor = _StopAt(inner, 4, times)
    seen = []
    with signal_policy():
        if times == 1:
            seen = [r.index for r in stream]
        else:
            with pytest.raises(interrupt.Stopped):
                seen = [r.index for r in stream]
    lines = (out / "clip.jsonl").read_text().splitlines()
    mp4 = out / "clip.mp4"
    frames = len(list(VideoReader(mp4))) if times == 1 or mp4.exists() else 0  # playable whenever it is there
    if times == 1:
        assert seen == [0, 1, 2, 3, 4] and len(lines) == frames == 5 and stream.summary()["stopped"] == "SIGTERM"
    else:
        assert len(lines) == 4 and frames <= 4  # frame 4 never finished; the writer's queue was dropped
    assert not list(out.glob(".litepose-*")) and not (out / ".litepose.lock").exists()


def test_threads_keep_order_and_hand_errors_over() -> None:
    from litepose.pipeline.workers import Ahead, Behind

    done = []
    behind = Behind(done.append, depth=2)
    for i in range(50):
        behind.put(i)
    behind.finish()
    assert done == list(range(50))

    def fail(item):
        if item == 3:
            raise OSError(28, "No space left on device")
        done.append(item)

    done.clear()
    behind = Behind(fail, depth=2)
    with pytest.raises(OSError, match="No space"):
        for i in range(50):
            behind.put(i)
        behind.finish()
    assert done == [0, 1, 2]

    closed = []

    def frames():
        try:
            yield from range(5)
            raise ValueError("clip.mp4: frame 5 is corrupt")
        finally:
            closed.append(True)

    got = []
    with pytest.raises(ValueError, match="frame 5"):
        for item, ms in Ahead(frames(), depth=2):
            got.append(item)
            assert ms >= 0
    assert got == [0, 1, 2, 3, 4] and closed == [True]
    closed.clear()
    ahead = Ahead(frames(), depth=2)
    for _ in ahead:
        break  # leaving early: the thread stops and closes its source itself
    ahead.close()
    assert closed == [True]


# -- stream sources -------------------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sources_that_cannot_be_read_fail_fast_in_one_line(tmp_path, capsys) -> None:
    from litepose.cli import main

    out = tmp_path / "out"
    url = f"rtsp://user:secret@127.0.0.1:{_closed_port()}/cam"
    for source, why in ((url, "cannot open the stream"), ("ftp://host/clip.mp4", "not a stream litepose reads"),
                        ("/dev/video97", "no such camera device")):  # fmt: skip
        assert main(["predict", source, *FAST, "--output", str(out)]) == 2
        err = capsys.readouterr().err
        assert why in err and len(err.strip().splitlines()) == 1, err
        assert "secret" not in err and not out.exists()  # no password shown, nothing written


class _RangedFiles(http.server.SimpleHTTPRequestHandler):
    """Files with HTTP range requests, which FFmpeg needs to seek in an mp4 (Python's own server
    answers every request with the whole file)."""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start, end = 0, len(data) - 1
        asked = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if asked:
            start, end = int(asked.group(1)), int(asked.group(2) or end)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(data[start : end + 1])


def test_a_video_served_over_http_is_read_whole(tmp_path, capsys) -> None:
    from litepose.cli import main

    video = shared("data/video/mmpose_demo_street_walking.mp4")
    handler = functools.partial(_RangedFiles, directory=str(video.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{video.name}"
        out = tmp_path / "out"
        assert main(["predict", url, *FAST, "--output", str(out), "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["video_frames"] == 5 and not summary["skipped"]
        assert len((out / f"{video.stem}.jsonl").read_text().splitlines()) == 5  # named after the URL's file
        assert len(list(VideoReader(out / f"{video.stem}.mp4"))) == 5
        missing = f"http://127.0.0.1:{server.server_address[1]}/missing.mp4"
        assert main(["predict", missing, *FAST, "--output", str(out)]) == 2
        assert "cannot open the stream" in capsys.readouterr().err
    finally:
        server.shutdown()
        server.server_close()


class _FakeCapture:
    """A capture that gives ``frames`` frames, then fails; opened only when ``opens`` allows."""

    def __init__(self, frames: int, opened: bool = True) -> None:
        self.frames, self.opened = frames, opened

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return self.opened

    def read(self):
        if not self.opened or self.frames == 0:
            return False, None
        self.frames -= 1
        return True, np.zeros((8, 8, 3), np.uint8)

    def get(self, prop) -> float:
        return 0.0  # a live stream: no frame count

    def release(self) -> None:
        pass


def test_a_lost_live_stream_is_reopened_a_few_times_then_ends(monkeypatch) -> None:
    import litepose.media as media

    opens = iter([_FakeCapture(3), _FakeCapture(0, opened=False), _FakeCapture(2), _FakeCapture(0, False)] + [
        _FakeCapture(0, False)] * 5)  # fmt: skip
    waits = []
    monkeypatch.setattr(media.VideoReader, "_open_url", lambda self: next(opens))
    monkeypatch.setattr("time.sleep", waits.append)
    reader = media.VideoReader("rtsp://127.0.0.1:1/cam", retries=3)
    assert reader.live and reader.frame_count is None
    assert len(list(reader)) == 5  # 3, lost, a failed reopen, 2 more, lost for good
    assert reader.reconnects == 1 and reader.lost
    assert waits == [1.0, 2.0, 1.0, 2.0, 4.0]  # backoff, started again after a reopen that worked
