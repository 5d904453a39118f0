"""``litepose predict`` end to end: COCO sample (overlays + results.json that pycocotools
loads), both shared videos, the CrowdPose sample with the 14-joint XS subnet, and bad inputs."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import shared

import litepose
from litepose.cli import main

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def weights() -> str:
    return str(shared("ref/model_XS_17.pth"))


def test_coco_sample_overlays_and_results_json(tmp_path, weights, capsys):
    folder = shared("data/coco_sample")
    out = tmp_path / "out"
    code = main(
        ["predict", str(folder), "--weights", weights, "--threshold", "1.0", "--output", str(out), "--save-json"]
    )
    assert code == 0
    cap = capsys.readouterr()
    assert "4 image(s)" in cap.out and "ms per image (preprocess" in cap.out
    assert "test_coco.json: not an image" in cap.err  # the folder's annotation file is reported, not read
    stems = sorted(p.stem for p in folder.glob("*.jpg"))
    assert sorted(p.stem for p in out.glob("*.jpg")) == stems
    overlay = cv2.imread(str(out / f"{stems[0]}.jpg"))
    assert overlay.shape == cv2.imread(str(folder / f"{stems[0]}.jpg")).shape
    results = json.loads((out / "results.json").read_text())
    assert results and {r["image_id"] for r in results} <= {int(s) for s in stems}
    assert all(len(r["keypoints"]) == 51 and r["category_id"] == 1 for r in results)

    from pycocotools.coco import COCO

    gt = COCO(str(folder / "test_coco.json"))
    dt = gt.loadRes(str(out / "results.json"))
    assert len(dt.getAnnIds()) == len(results)


def test_ann_gives_image_ids(tmp_path, weights):
    folder = shared("data/coco_sample")
    ann = json.loads((folder / "test_coco.json").read_text())
    renamed = tmp_path / "imgs"
    renamed.mkdir()
    im = ann["images"][0]
    (renamed / "photo.jpg").write_bytes((folder / im["file_name"]).read_bytes())
    ann["images"][0]["file_name"] = "photo.jpg"
    (tmp_path / "ann.json").write_text(json.dumps(ann))
    out = tmp_path / "out"
    code = main(
        ["predict", str(renamed / "*.jpg"), "--weights", weights, "--threshold", "1.0", "--no-flip",
         "--output", str(out), "--save-json", "--ann", str(tmp_path / "ann.json")]
    )  # fmt: skip
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results and {r["image_id"] for r in results} == {im["id"]}


def test_long_video_end_to_end_in_a_subprocess(tmp_path, weights):
    """The 72-frame 1920x1080 video through the installed entry point (small input for speed)."""
    video = shared("data/video/mmaction2_demo_skeleton_two_people.mp4")
    out = tmp_path / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "litepose", "predict", str(video), "--weights", weights, "--output", str(out),
           "--no-flip", "--input-size", "128", "--threads", "1"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "72 video frame(s)" in proc.stdout
    lines = (out / f"{video.stem}.jsonl").read_text().splitlines()
    assert len(lines) == 72 and json.loads(lines[5])["frame"] == 5
    cap = cv2.VideoCapture(str(out / f"{video.stem}.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 72 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 1920


def _mjpg_clip(folder: Path, frames: int = 10) -> tuple[Path, Path]:
    """An MJPG ``clip.avi`` of ``frames`` frames, and ``broken.avi``: the same with its last quarter cut off."""
    src = folder / "clip.avi"
    writer = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 128))
    for i in range(frames):
        writer.write(np.full((128, 160, 3), 20 * i, np.uint8))
    writer.release()
    data = src.read_bytes()
    broken = folder / "broken.avi"
    broken.write_bytes(data[: int(len(data) * 0.75)])
    return src, broken


def test_street_video_and_broken_tail(tmp_path, weights, capsys):
    video = shared("data/video/mmpose_demo_street_walking.mp4")
    out = tmp_path / "out"
    assert main(["predict", str(video), "--weights", weights, "--output", str(out)]) == 0
    lines = (out / f"{video.stem}.jsonl").read_text().splitlines()
    assert len(lines) == 5
    person = json.loads(lines[0])["people"][0]
    assert len(person["keypoints"]) == 17 and len(person["box"]) == 4

    # an MJPG video whose last frames are cut off: every frame before the break is kept
    _, broken = _mjpg_clip(tmp_path)
    readable = 0
    cap = cv2.VideoCapture(str(broken))
    while cap.read()[0]:
        readable += 1
    assert 0 < readable < 10
    assert main(["predict", str(broken), "--weights", weights, "--output", str(out), "--no-flip"]) == 0
    assert len((out / "broken.jsonl").read_text().splitlines()) == readable


def test_crowdpose_sample_with_the_14_joint_subnet(tmp_path, capsys):
    supernet, info = litepose.load_checkpoint(shared("ref/super_14.pth"))
    assert info["num_joints"] == 14
    subnet = litepose.extract_subnet(supernet, "litepose-xs")
    ckpt = litepose.save_checkpoint(subnet, tmp_path / "xs14.pth")
    folder = shared("data/crowdpose_sample")
    out = tmp_path / "out"
    assert main(["predict", str(folder), "--weights", str(ckpt), "--output", str(out), "--save-json"]) == 0
    assert len(list(out.glob("*.jpg"))) == 2
    results = json.loads((out / "results.json").read_text())
    assert results and all(len(r["keypoints"]) == 14 * 3 for r in results)
    assert {r["image_id"] for r in results} <= {103319, 106848}


def _exif_rotated_jpeg(path: Path, rgb: np.ndarray, orientation: int = 6) -> None:
    """A JPEG whose EXIF says 'rotate 90 degrees clockwise to display' (orientation 6)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    jpg = buf.tobytes()
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    tiff = b"MM\x00*" + struct.pack(">I", 8) + ifd
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    path.write_bytes(jpg[:2] + app1 + jpg[2:])


def test_bad_and_unusual_inputs(tmp_path, weights, capsys):
    folder = tmp_path / "inputs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
    cv2.imwrite(str(folder / "gray.png"), rgb[:, :, 0])
    cv2.imwrite(str(folder / "rgba.png"), np.dstack([rgb, np.full((96, 128), 128, np.uint8)]))
    cv2.imwrite(str(folder / "deep.png"), rgb.astype(np.uint16) * 257)
    _exif_rotated_jpeg(folder / "rotated.jpg", rgb)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.png").write_text("not an image at all")
    out = tmp_path / "out"
    code = main(["predict", str(folder), "--weights", weights, "--output", str(out), "--no-flip", "--show"])
    assert code == 0
    err = capsys.readouterr().err
    assert "empty.jpg: file is empty" in err and "notes.png: not a readable image" in err
    assert "--show:" in err  # no display here: said so, results still written
    assert sorted(p.stem for p in out.glob("*.jpg")) == ["deep", "gray", "rgba", "rotated"]
    assert cv2.imread(str(out / "rotated.jpg")).shape[:2] == (128, 96)  # turned upright (EXIF)
    assert cv2.imread(str(out / "deep.jpg")).shape[:2] == (96, 128)

    # nothing processable: exit code 1; a missing source: a one-line error, exit code 2
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_bytes(b"")
    assert main(["predict", str(bad), "--weights", weights, "--output", str(out)]) == 1
    assert "nothing could be processed" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nope"), "--weights", weights]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["predict", str(folder / "gray.png")]) == 2
    assert "--weights" in capsys.readouterr().err


def test_model_name_without_weights_warns(tmp_path, capsys):
    img = tmp_path / "x.png"
    cv2.imwrite(str(img), np.zeros((64, 64, 3), np.uint8))
    assert main(["predict", str(img), "--model", "litepose-xs", "--output", str(tmp_path / "o"), "--no-flip"]) == 0
    assert "random weights" in capsys.readouterr().err
