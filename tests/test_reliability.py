"""Nothing lost, nothing silent: predict, val and train against bad input and interruption.

Every bad input is generated here, small: an odd image in a folder, Ctrl-C mid-run, colliding
image ids, an EXIF-rotated photo scored against annotations, a wrong val set, killed checkpoint
writes, NaN and string numbers, and the values that used to pass silently or end in a traceback.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import shared
from test_predict_cli import _exif_rotated_jpeg, _mjpg_clip

import litepose
from litepose.cli import main
from litepose.media import read_image
from litepose.models.checkpoint import atomic_save

REPO = Path(__file__).resolve().parents[1]
FAST = ["--model", "litepose-xs", "--input-size", "64", "--no-flip", "--threads", "1"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _images(folder: Path, names: list[str], h: int = 48, w: int = 64) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        cv2.imwrite(str(folder / name), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    return folder


def _coco(names: list[str], joints: int = 17, h: int = 48, w: int = 64) -> dict:
    return {
        "images": [{"id": i, "file_name": n, "width": w, "height": h} for i, n in enumerate(names, start=1)],
        "annotations": [],
        "categories": [{"id": 1, "name": "person", "keypoints": [f"k{j}" for j in range(joints)]}],
    }


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width x height but that holds no pixel data (a 'decompression bomb')."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


# -- 1. one odd image, size caps ------------------------------------------------------------------------


def test_one_odd_image_is_skipped_by_name_and_the_rest_are_written(tmp_path, capsys) -> None:
    folder = _images(tmp_path / "imgs", ["a.png", "b.png", "c.png"])
    cv2.imwrite(str(folder / "tall.png"), np.zeros((20000, 1, 3), np.uint8))  # 1 wide, 20000 tall
    out = tmp_path / "out"
    assert main(["predict", str(folder), *FAST, "--save-json", "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert "tall.png" in err and "network input" in err and "MAX_INPUT_PIXELS" in err
    assert sorted(p.stem for p in out.glob("*.jpg")) == ["a", "b", "c"]
    assert isinstance(json.loads((out / "results.json").read_text()), list)


def test_size_caps_refuse_before_any_allocation(tmp_path) -> None:
    from litepose.media import MAX_IMAGE_PIXELS, MediaError, read_image
    from litepose.preprocess import MAX_INPUT_PIXELS, resize_geometry

    bomb = tmp_path / "bomb.png"
    _png_header_only(bomb, 10000, 10000)  # 100 megapixels claimed by a 45-byte file
    with pytest.raises(MediaError, match=r"bomb\.png: 10000x10000 is 100 megapixels.*limit of 50"):
        read_image(bomb, frame="stored")
    assert MAX_IMAGE_PIXELS == 50_000_000
    with pytest.raises(ValueError, match="1x20000 image .* 256x5120000 network input"):
        resize_geometry(20000, 1, 256)
    g = resize_geometry(480, 640, 256)
    assert g.size == (384, 256) and g.size[0] * g.size[1] <= MAX_INPUT_PIXELS
    with pytest.raises(ValueError, match="input_size 100000 is too large"):
        litepose.Predictor(litepose.create_model("litepose-xs"), input_size=100000, device="cpu")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--input-size", "100000"], "input_size 100000 is too large"),
        (["--input-size", "0"], "positive multiple of 16"),
        (["--input-size", "17"], "positive multiple of 16 .*got 17"),
        (["--threshold", "nan"], "detection_threshold must be a finite number in"),
        (["--tag-threshold", "-1"], "tag_threshold must be a finite number"),
        (["--kpt-threshold", "inf"], "--kpt-threshold must be a number in"),
        (["--max-people", "0"], "max_people must be a positive integer"),
    ],
)
def test_predict_values_are_checked_never_silently_changed(tmp_path, capsys, argv, message) -> None:
    img = _images(tmp_path, ["x.png"]) / "x.png"
    base = ["predict", str(img), "--model", "litepose-xs", "--no-flip", "--output", str(tmp_path / "o")]
    assert main([*base, *argv, "--json"]) == 2
    cap = capsys.readouterr()
    assert re.search(message, json.loads(cap.out)["error"]), cap.out
    assert "Traceback" not in cap.err


def test_input_size_rounded_by_the_test_time_resize_says_so() -> None:
    with pytest.warns(UserWarning, match="input_size 80 runs at 128"):
        litepose.Predictor(litepose.create_model("litepose-xs"), input_size=80, device="cpu")


# -- 2. image ids ------------------------------------------------------------------------------------------


def test_image_ids_never_collide_on_mixed_names(tmp_path, capsys) -> None:
    mixed = _images(tmp_path / "mixed", ["1.jpg", "0001.png", "cat.jpg"])
    out = tmp_path / "out"
    assert main(["predict", str(mixed), *FAST, "--threshold", "0", "--save-json", "--output", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    mapping = json.loads((out / "image_ids.json").read_text())
    assert summary["image_ids_json"] == str(out / "image_ids.json") and summary["frame"] == "upright"
    assert sorted(mapping.values()) == [1, 2, 3] and {Path(k).name for k in mapping} == {"1.jpg", "0001.png", "cat.jpg"}
    results = json.loads((out / "results.json").read_text())
    assert results and all(mapping[str(mixed / r["file_name"])] == r["image_id"] for r in results)

    numeric = _images(tmp_path / "numeric", ["5.png", "0007.png"])
    out2 = tmp_path / "out2"
    assert main(["predict", str(numeric), *FAST, "--threshold", "0", "--save-json", "--output", str(out2)]) == 0
    assert {r["image_id"] for r in json.loads((out2 / "results.json").read_text())} == {5, 7}
    assert not (out2 / "image_ids.json").exists()

    # val refuses results whose ids are not the annotations' (here: the running index)
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(_coco(["cat.jpg", "1.jpg", "0001.png"])))
    assert main(["val", "--data", str(gt), "--results", str(out / "results.json")]) == 2
    err = capsys.readouterr().err
    assert "results.json: result #" in err and "the ids are not the annotations'" in err


def test_ann_gives_ids_per_file_and_must_fit_the_model(tmp_path, capsys) -> None:
    folder = _images(tmp_path / "imgs", ["a.png", "stray.png"])
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(_coco(["sub/a.png"])))
    out = tmp_path / "out"
    assert main(["predict", str(folder), *FAST, "--ann", str(ann), "--save-json", "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert "stray.png: not among the images of" in err and [p.stem for p in out.glob("*.jpg")] == ["a"]
    ann14 = tmp_path / "ann14.json"
    ann14.write_text(json.dumps(_coco(["a.png"], joints=14)))
    assert main(["predict", str(folder), *FAST, "--ann", str(ann14), "--output", str(tmp_path / "o14")]) == 2
    assert "14 keypoints per person, the model predicts 17" in capsys.readouterr().err
    assert not (tmp_path / "o14").exists()  # refused before any inference


# -- 3. the pixel frame --------------------------------------------------------------------------------------


def test_exif_rotated_photo_with_ann_scores_as_val_weights(tmp_path, capsys) -> None:
    weights = str(shared("ref/model_XS_17.pth"))
    sample = shared("data/coco_sample")
    coco = json.loads((sample / "test_coco.json").read_text())
    im = next(i for i in coco["images"] if i["file_name"] == "000000000785.jpg")
    images = tmp_path / "images"
    images.mkdir()
    _exif_rotated_jpeg(images / im["file_name"], read_image(sample / im["file_name"], frame="stored"))
    coco["images"] = [im]
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] == im["id"]]
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(coco))
    opts = ["--weights", weights, "--no-flip"]

    out = tmp_path / "with_ann"
    assert main(["predict", str(images), *opts, "--ann", str(gt), "--save-json", "--output", str(out)]) == 0
    predicted = json.loads((out / "results.json").read_text())
    capsys.readouterr()
    assert main(["val", "--data", str(gt), "--results", str(out / "results.json"), "--json"]) == 0
    from_results = json.loads(capsys.readouterr().out)
    assert main(["val", "--data", str(gt), *opts, "--output", str(tmp_path / "val"), "--json"]) == 0
    from_weights = json.loads(capsys.readouterr().out)
    scored = json.loads((tmp_path / "val" / "results.json").read_text())  # what val --weights predicted
    assert predicted and [{k: r[k] for k in scored[0]} for r in predicted] == scored
    metrics = [k for k in from_weights if k.startswith(("AP", "AR"))]
    assert metrics and all(from_results[k] == from_weights[k] for k in metrics)

    # without --ann: upright, marked so, and val refuses to score it against stored-frame annotations
    up = tmp_path / "upright"
    assert main(["predict", str(images), *opts, "--save-json", "--output", str(up)]) == 0
    marked = json.loads((up / "results.json").read_text())
    assert marked and all(r["frame"] == "upright" for r in marked)
    assert [r["keypoints"] for r in marked] != [r["keypoints"] for r in predicted]  # the frames differ
    assert main(["val", "--data", str(gt), "--results", str(up / "results.json")]) == 2
    assert "is in the 'upright' pixel frame" in capsys.readouterr().err


# -- 4. Ctrl-C -------------------------------------------------------------------------------------------------


def test_ctrl_c_keeps_the_results_so_far(tmp_path) -> None:
    folder = _images(tmp_path / "imgs", [f"{i:04d}.png" for i in range(1, 301)], h=96, w=128)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "litepose", "predict", str(folder), "--model", "litepose-xs", "--input-size", "256",
           "--threshold", "0", "--save-json", "--threads", "1", "--output", str(out)]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("*.jpg"))) < 3:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "predict wrote no overlay in 2 minutes"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    done = {int(p.stem) for p in out.glob("*.jpg")}
    assert 3 <= len(done) < 300
    results = json.loads((out / "results.json").read_text())  # valid JSON, with what was done
    assert results and {r["image_id"] for r in results} <= done
    assert "stopped after" in err and "interrupted" in err


# -- 5, 6. training: checks before the first step, checkpoint files ------------------------------------------


def _tiny_config(tmp_path: Path, **sections: dict) -> Path:
    from litepose.data.synth import make_synthpose

    make_synthpose(tmp_path / "synth", 2, seed=0, size="96x64", progress=False)
    cfg = {
        "model": {"arch": "litepose-xs", "input_size": 64},
        "data": {"train": str(tmp_path / "synth"), "workers": 0},
        "train": {"epochs": 1, "batch_size": 2, "max_steps_per_epoch": 1, "device": "cpu"},
        "val": {"every": 1},
    }
    for k, v in sections.items():
        cfg[k] = {**cfg[k], **v}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_a_bad_val_set_stops_training_before_the_first_step(tmp_path, capsys) -> None:
    val = tmp_path / "val.json"
    val.write_text(json.dumps(_coco(["gone.jpg"])))  # its image does not exist
    out = tmp_path / "run"
    config = _tiny_config(tmp_path, data={"val": str(val)})
    assert main(["train", "--config", str(config), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "val.json: 1 of its 1 val images are missing" in err and "gone.jpg" in err
    assert not (out / "last.pth").exists() and not (out / "metrics.jsonl").exists()  # not one step taken


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epochs=0", "train.epochs must be at least 1, got 0"),
        ("data.sigma=0", "data.sigma must be a positive number"),
        ("model.input_size=100", "model.input_size must be a positive multiple of 16"),
        ("val.detection_threshold=.nan", "val.detection_threshold must be a number in"),
    ],
)
def test_config_values_are_checked(tmp_path, override, message) -> None:
    from litepose.engine.config import TrainConfig

    with pytest.raises(ValueError, match=message):
        TrainConfig.load(None, [override])


def test_checkpoints_have_normal_permissions_and_leave_no_temp_files(tmp_path) -> None:
    from litepose.engine.config import TrainConfig
    from litepose.engine.trainer import Trainer
    from litepose.files import remove_stale_temps

    model = litepose.create_model("litepose-xs")
    old = os.umask(0o022)
    try:
        path = litepose.save_checkpoint(model, tmp_path / "m.pth")
        assert path.stat().st_mode & 0o777 == 0o644  # as any other output, not mkstemp's 0600
        os.umask(0o002)
        assert litepose.save_checkpoint(model, tmp_path / "g.pth").stat().st_mode & 0o777 == 0o664
    finally:
        os.umask(old)
    with pytest.raises((AttributeError, TypeError, pickle.PicklingError)):  # a lambda cannot be pickled
        atomic_save({"f": lambda: 0}, tmp_path / "bad.pth")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pth", "m.pth"]  # no temp file left on failure

    run = tmp_path / "run"
    run.mkdir()
    for name in (".last.pth.1a2b.tmp", ".best.pth.3c4d.tmp", ".other.pth.5e6f.tmp", "last.pth"):
        (run / name).write_bytes(b"x")
    trainer = Trainer(TrainConfig(), run, resume="auto")
    trainer.log.open(trainer.cfg.to_dict(), 0)  # a run starting in the folder clears its own stale temporary files only
    assert sorted(p.name for p in run.iterdir() if p.is_file()) == [".other.pth.5e6f.tmp", "config.yaml", "last.pth"]
    assert remove_stale_temps(tmp_path / "nowhere", ["last.pth"]) == []


# -- 7. numbers that are not -----------------------------------------------------------------------------------


def _gt_with(tmp_path: Path, **fields) -> Path:
    data = _coco(["a.jpg"])
    kps = [10.0, 10.0, 2] * 17
    data["annotations"] = [{"id": 7, "image_id": 1, "category_id": 1, "keypoints": kps, "bbox": [1, 1, 20, 30],
                            "area": 600.0, **fields}]  # fmt: skip
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"area": float("nan")}, "annotation 7 has an invalid area nan"),
        ({"area": "big"}, "annotation 7 has an invalid area 'big'"),
        ({"bbox": [1, 1, "20", 30]}, "annotation 7 has an invalid bbox"),
        ({"keypoints": ["12"] + [10.0] * 50}, "annotation 7 has non-numeric keypoint values such as '12'"),
    ],
)
def test_ground_truth_numbers_must_be_finite_numbers(tmp_path, capsys, fields, message) -> None:
    gt = _gt_with(tmp_path, **fields)
    assert main(["val", "--data", str(gt), "--gt-as-results"]) == 2
    err = capsys.readouterr().err
    assert "gt.json: " + message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"keypoints": ["12"] + [10.0] * 50}, "result #0 has a non-numeric keypoints"),
        ({"score": "0.9"}, "result #0 has a non-numeric score"),
        ({"image_id": [1]}, "result #0 has an invalid image_id \\[1\\]"),
        ({"keypoints": [float("nan")] * 51}, "result #0 has NaN or infinite values"),
    ],
)
def test_result_numbers_must_be_finite_numbers(tmp_path, capsys, change, message) -> None:
    gt = _gt_with(tmp_path)
    res = tmp_path / "res.json"
    res.write_text(json.dumps([{"image_id": 1, "category_id": 1, "keypoints": [10.0] * 51, "score": 0.9, **change}]))
    assert main(["val", "--data", str(gt), "--results", str(res)]) == 2
    err = capsys.readouterr().err
    assert re.search(re.escape(str(res)) + ": " + message, err), err


# -- 8, 10. one line, not a traceback -----------------------------------------------------------------------------


def test_expected_errors_are_one_line_with_exit_code_2(tmp_path, capsys) -> None:
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    img = _images(tmp_path, ["x.png"]) / "x.png"
    arch = tmp_path / "arch.json"
    arch.write_text("[1, 2]")
    notes = tmp_path / "notes.pth"
    notes.write_text("these are not weights\n")
    cases = [
        (["predict", str(img), *FAST, "--output", str(a_file)], "exists and is a file, not a folder"),
        (["synth", "--num-images", "1", "--output", str(a_file)], "exists and is a file, not a folder"),
        (["synth", "--num-images", "1", "--size", "100000x100000", "--output", str(tmp_path / "s")], "too large"),
        (["profile", str(arch)], "an architecture JSON is an object"),
        (["profile", "litepose-xs", "--input-size", "-16"], "positive multiple of 16"),
        (["profile", "litepose-xs", "--num-joints", "-3"], "number of joints must be a positive integer"),
        (["predict", str(img), "--weights", str(notes)], "not a PyTorch checkpoint"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)
        assert "weights_only=False" not in err
    assert not (tmp_path / "s").exists()


def test_a_bug_shows_its_traceback_and_asks_to_be_reported(tmp_path, capsys, monkeypatch) -> None:
    from litepose.commands import profile

    def broken(args):
        raise KeyError("oops")

    monkeypatch.setattr(profile, "run", broken)
    assert main(["profile", "--json"]) == 1
    cap = capsys.readouterr()
    assert "Traceback" in cap.err and "this is a bug in litepose" in cap.err
    assert json.loads(cap.out)["exit_code"] == 1  # --json: still one object


# -- 9. a truncated video ------------------------------------------------------------------------------------------


def test_a_truncated_video_warns_with_the_count_of_frames_decoded(tmp_path, capsys) -> None:
    src, broken = _mjpg_clip(tmp_path)
    assert main(["predict", str(broken), *FAST, "--output", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    lines = (tmp_path / "o" / "broken.jsonl").read_text().splitlines()
    assert 0 < len(lines) < 10 and f"{len(lines)} of the 10 frames it holds could be decoded" in err
    assert main(["predict", str(src), *FAST, "--output", str(tmp_path / "o")]) == 0
    assert "frames it holds" not in capsys.readouterr().err  # a whole file: no warning
