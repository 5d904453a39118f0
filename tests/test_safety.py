"""Never destroy, never lie (issue 23): outputs never replace inputs, names of any bytes, one stop
policy for SIGINT and SIGTERM, one run per output folder, errors that keep their meaning.

Everything here is generated small; the subprocess tests send real signals to a real ``litepose``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from litepose.cli import main
from litepose.errors import describe, one_line
from litepose.files import FolderBusy, FolderLock, atomic_write, clashes
from litepose.media import VideoReader

REPO = Path(__file__).resolve().parents[1]
FAST = ["--model", "litepose-xs", "--input-size", "64", "--no-flip", "--threads", "1"]
POSIX = pytest.mark.skipif(os.name != "posix", reason="POSIX signals and byte file names")

pytestmark = pytest.mark.usefixtures("one_thread")


def _image(path: Path, h: int = 48, w: int = 64, seed: int = 0) -> Path:
    ok, buf = cv2.imencode(path.suffix or ".jpg", np.random.default_rng(seed).integers(0, 255, (h, w, 3), np.uint8))
    assert ok
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:  # Python's open: any bytes in the name
        f.write(buf.tobytes())
    return path


def _video(path: Path, frames: int, h: int = 48, w: int = 64, tmp: Path | None = None) -> Path:
    tmp = tmp or path.parent / "plain-name.mp4"  # OpenCV is given only plain UTF-8 names
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (w, h))
    rng = np.random.default_rng(1)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (h, w, 3), np.uint8))
    writer.release()
    os.replace(tmp, path)
    return path


def _digest(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))


# -- 1. outputs never replace inputs --------------------------------------------------------------------------


def test_predict_refuses_an_output_folder_that_would_replace_its_inputs(tmp_path, capsys, monkeypatch) -> None:
    photos = tmp_path / "photos"
    _image(photos / "a.jpg")
    _image(photos / "b.png", seed=1)
    _video(photos / "clip.mp4", 3)
    before = _digest(photos)
    link = tmp_path / "link"
    link.symlink_to(photos)
    for out in (str(photos), str(link), str(photos / "." / ".." / "photos")):
        assert main(["predict", str(photos), *FAST, "--output", out]) == 2
        err = capsys.readouterr().err
        assert "would replace the input" in err and len(err.strip().splitlines()) == 1, err
    monkeypatch.chdir(photos)  # --output . inside the folder
    assert main(["predict", ".", *FAST, "--output", "."]) == 2
    assert "would replace the input" in capsys.readouterr().err
    assert main(["predict", str(photos), *FAST, "--output", ""]) == 2
    assert "--output is empty" in capsys.readouterr().err
    assert _digest(photos) == before  # nothing written, nothing replaced, no lock left behind
    # --ann is an input too: results.json may not replace it
    ann = tmp_path / "ann" / "results.json"
    ann.parent.mkdir()
    ann.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    assert main(["predict", str(photos / "a.jpg"), *FAST, "--ann", str(ann), "--output", str(ann.parent)]) == 2
    assert "would replace the input" in capsys.readouterr().err
    # a folder beside the inputs is fine, and a png input whose overlay is a .jpg does not clash
    assert main(["predict", str(photos / "b.png"), *FAST, "--output", str(photos)]) == 0
    assert (photos / "b.jpg").is_file() and _digest(photos)[str(photos / "b.png")] == before[str(photos / "b.png")]


def test_clashes_follow_symlinks_and_hard_links(tmp_path) -> None:
    real = _image(tmp_path / "real.jpg")
    (tmp_path / "sym.jpg").symlink_to(real)
    os.link(real, tmp_path / "hard.jpg")
    found = clashes([tmp_path / "sym.jpg", tmp_path / "hard.jpg", tmp_path / "new.jpg"], [real])
    assert [o.name for o, _ in found] == ["sym.jpg", "hard.jpg"]


# -- 2. file names of any bytes -------------------------------------------------------------------------------


@POSIX
def test_names_that_are_not_utf8_work_end_to_end(tmp_path) -> None:
    if sys.platform == "darwin":
        pytest.skip("macOS file systems refuse names that are not UTF-8")
    root = os.fsencode(tmp_path)
    src = Path(os.fsdecode(root + b"/in\xff"))
    _image(Path(os.fsdecode(os.fsencode(src) + b"/p\xfe.jpg")))
    _image(src / "plain.jpg", seed=2)
    _video(Path(os.fsdecode(os.fsencode(src) + b"/cl\xfdip.mp4")), 4, tmp=tmp_path / "plain.mp4")
    out = Path(os.fsdecode(root + b"/out\xfc"))
    cmd = [sys.executable, "-m", "litepose", "predict", os.fsencode(src), *FAST, "--output", os.fsencode(out),
           "--save-json", "--track", "--json"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["images"] == 2 and summary["video_frames"] == 4
    names = sorted(os.listdir(os.fsencode(out)))
    assert b"p\xfe.jpg" in names and b"cl\xfdip.mp4" in names and b"cl\xfdip.jsonl" in names
    assert len(list(VideoReader(Path(os.fsdecode(os.fsencode(out) + b"/cl\xfdip.mp4"))))) == 4
    assert len(json.loads((out / "results.json").read_text())) >= 0
    assert "\\xff" in summary["frames_jsonl"]  # printed as an escape, never a crash


# -- 3. SIGTERM and SIGINT -----------------------------------------------------------------------------------


def _start(cmd: list, out: Path, ready) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    deadline = time.monotonic() + 120
    while not ready():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "no progress in 2 minutes"
        time.sleep(0.02)
    return proc


@POSIX
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_keeps_a_playable_video_complete_lines_and_the_summary(tmp_path, sig) -> None:
    clip = _video(tmp_path / "clip.mp4", 600)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "litepose", "predict", str(clip), *FAST, "--output", str(out), "--json"]
    jsonl = out / "clip.jsonl"
    proc = _start(cmd, out, lambda: jsonl.is_file() and jsonl.read_text().count("\n") >= 5)
    try:
        proc.send_signal(sig)
        stdout, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err[-2000:]
    summary = json.loads(stdout)
    assert summary["stopped"] == signal.Signals(sig).name
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]  # every line whole
    assert 5 <= len(lines) == summary["video_frames"] < 600
    assert len(list(VideoReader(out / "clip.mp4"))) == len(lines)  # playable, every frame written
    assert not list(out.glob(".litepose-*")) and not (out / ".litepose.lock").exists()
    assert "stopped after" in err


@POSIX
def test_sigterm_on_a_folder_writes_results_json_and_exits_143(tmp_path) -> None:
    folder = tmp_path / "imgs"
    for i in range(1, 401):
        _image(folder / f"{i:04d}.png", seed=i)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "litepose", "predict", str(folder), *FAST, "--save-json", "--output", str(out)]
    proc = _start(cmd, out, lambda: len(list(out.glob("*.jpg"))) >= 3)
    try:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err[-2000:]
    done = {int(p.stem) for p in out.glob("*.jpg")}
    assert 3 <= len(done) < 400
    results = json.loads((out / "results.json").read_text())
    assert {r["image_id"] for r in results} <= done
    assert "interrupted by SIGTERM" in err


# -- 5. one run per output folder -----------------------------------------------------------------------------


def test_an_output_folder_is_owned_by_one_run(tmp_path, capsys) -> None:
    img = _image(tmp_path / "in" / "a.jpg")
    out = tmp_path / "out"
    with FolderLock(out, "litepose predict"):
        assert main(["predict", str(img), *FAST, "--output", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"pid {os.getpid()}" in err and "in use by litepose predict" in err
        assert not (out / "a.jpg").exists()
    assert main(["predict", str(img), *FAST, "--output", str(out)]) == 0
    assert (out / "a.jpg").is_file() and not (out / ".litepose.lock").exists()


@POSIX
def test_a_lock_left_by_a_dead_run_is_taken_over_with_a_notice(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    code = f"import os; from litepose.files import FolderLock as L; L({str(out)!r}, 'dead run').acquire(); os._exit(9)"
    subprocess.run([sys.executable, "-c", code], env=_env(), check=False, timeout=60)
    assert (out / ".litepose.lock").is_file()  # killed: its lock file stays, but the kernel dropped the lock
    img = _image(tmp_path / "in" / "a.jpg")
    assert main(["predict", str(img), *FAST, "--output", str(out)]) == 0
    assert "took over the lock of an earlier dead run" in capsys.readouterr().err
    assert not (out / ".litepose.lock").exists()
    with FolderLock(out), pytest.raises(FolderBusy, match="in use by run"):
        FolderLock(out).acquire()  # another open of the lock file, even in this process, is refused


# -- 7. errors that keep their meaning ------------------------------------------------------------------------


def test_multi_line_messages_are_folded_not_cut(tmp_path, capsys) -> None:
    torch_like = "Error(s) in loading state_dict for LitePose:\n\tMissing key(s) in state_dict: \"a.w\".\n\t"
    assert one_line(torch_like) == 'Error(s) in loading state_dict for LitePose: Missing key(s) in state_dict: "a.w".'
    ov_like = "Exception from src/inference/core.cpp:93:\nCheck 'false' failed at front.cpp:\nbin file not found"
    assert one_line(ov_like).endswith("bin file not found")
    assert len(one_line("x" * 5000)) <= 600
    # YAML: stderr gets one line with the cause; --json's "error" the whole message
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: [1, 2\n  epochs: 3\n")
    assert main(["train", "--config", str(bad), "--json"]) == 2
    cap = capsys.readouterr()
    line = cap.err.strip().splitlines()[-1]
    assert line.startswith("litepose train: error:") and "expected" in line and "^" not in line
    assert line.endswith("epochs: 3)")
    error = json.loads(cap.out)["error"]
    assert error.count("\n") >= 2 and "expected" in error and str(bad) in error


def test_os_errors_name_the_target_not_a_temporary_file(tmp_path) -> None:
    target = tmp_path / "results.json"

    def full_disk(tmp: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

    with pytest.raises(OSError) as e:
        atomic_write(target, full_disk)
    assert describe(e.value) == f"{target}: No space left on device"
    assert not list(tmp_path.iterdir())  # no temporary file left

    def torch_save_failed(tmp: Path) -> None:
        raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file data/0")

    with pytest.raises(OSError, match="is the disk full"):
        atomic_write(target, torch_save_failed)


def test_a_full_disk_during_predict_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch) -> None:
    img = _image(tmp_path / "in" / "a.jpg")
    real_replace = os.replace

    def replace(src, dst):
        if str(dst).endswith("results.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    out = tmp_path / "out"
    assert main(["predict", str(img), *FAST, "--save-json", "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"litepose predict: error: {out / 'results.json'}: No space left on device"


# -- 8. val checks its images first, and keeps what it did ---------------------------------------------------


def _val_set(folder: Path, n: int) -> Path:
    names = [f"{i:03d}.jpg" for i in range(1, n + 1)]
    for i, name in enumerate(names):
        _image(folder / name, seed=i)
    gt = {
        "images": [{"id": i, "file_name": nm, "width": 64, "height": 48} for i, nm in enumerate(names, start=1)],
        "annotations": [],
        "categories": [{"id": 1, "name": "person", "keypoints": [f"k{j}" for j in range(17)]}],
    }
    (folder / "ann.json").write_text(json.dumps(gt))
    return folder / "ann.json"


def test_val_finds_a_missing_or_broken_image_before_inferring_any(tmp_path) -> None:
    from litepose.eval import evaluate
    from litepose.media import MediaError

    gt = _val_set(tmp_path / "val", 6)
    (tmp_path / "val" / "004.jpg").unlink()
    (tmp_path / "val" / "005.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    calls = []

    def predictor(rgb):
        calls.append(rgb.shape)
        return []

    with pytest.raises(MediaError, match=r"2 of the 6 images .*004.jpg: no such file; .*005.jpg: broken image header"):
        evaluate(predictor, gt, output=tmp_path / "out")
    assert calls == [] and not (tmp_path / "out").exists()


def test_val_keeps_the_results_so_far_when_an_image_fails_mid_run(tmp_path, capsys) -> None:
    from litepose.eval import evaluate

    gt = _val_set(tmp_path / "val", 5)
    good = (tmp_path / "val" / "003.jpg").read_bytes()
    (tmp_path / "val" / "003.jpg").write_bytes(good[: len(good) // 3])  # a sound header, truncated pixel data

    def predictor(rgb):
        return [{"keypoints": np.ones((17, 3)), "score": 0.5}]

    with pytest.raises(Exception, match="003.jpg"):
        evaluate(predictor, gt, output=tmp_path / "out")
    kept = json.loads((tmp_path / "out" / "results.json").read_text())
    assert sorted({r["image_id"] for r in kept}) == [1, 2] and not (tmp_path / "out" / "metrics.json").exists()
    assert "kept the results so far" in capsys.readouterr().err


def test_val_refuses_an_output_that_would_replace_its_results(tmp_path, capsys) -> None:
    gt = _val_set(tmp_path / "val", 2)
    res = tmp_path / "val" / "metrics.json"
    res.write_text("[]")
    assert main(["val", "--data", str(gt), "--results", str(res), "--output", str(res.parent)]) == 2
    assert "would replace the input" in capsys.readouterr().err and res.read_text() == "[]"


# -- 5, 8. synth needs --overwrite; demo checks its numbers first ------------------------------------------


def test_synth_onto_a_dataset_needs_overwrite(tmp_path, capsys) -> None:
    out = tmp_path / "ds"
    args = ["synth", "--num-images", "3", "--size", "64x48", "--output", str(out)]
    assert main(args) == 0
    before = _digest(out)
    assert main(["synth", "--num-images", "2", "--size", "64x48", "--seed", "5", "--output", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and _digest(out) == before
    (out / "notes.txt").write_text("mine")
    again = ["synth", "--num-images", "2", "--size", "64x48", "--seed", "5", "--output", str(out)]
    assert main([*again, "--overwrite"]) == 0
    assert sorted(p.name for p in (out / "images").iterdir()) == ["000000.jpg", "000001.jpg"]  # no stale third image
    assert (out / "notes.txt").read_text() == "mine" and not (out / ".litepose.lock").exists()


@pytest.mark.parametrize(
    "bad", [["--minutes", "-1"], ["--minutes", "nan"], ["--train-images", "0"], ["--workers", "-2"]]
)
def test_demo_refuses_bad_numbers_before_generating_anything(tmp_path, capsys, bad) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--quick", *bad, "--output", str(out)]) == 2
    assert "must be" in capsys.readouterr().err and not out.exists()


# -- 3. the stop policy itself -------------------------------------------------------------------------------


_POLICY_SCRIPT = """
import json, os, signal, sys, time
from litepose import interrupt
from litepose.cli import main
from litepose.commands import profile

def slow(args):
    os.kill(os.getpid(), signal.SIGTERM)  # outside any graceful region: stops at once
    time.sleep(5)
    raise AssertionError("not stopped")

profile.run = slow
code = main(["profile", "litepose-xs", "--json"])
restored = signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
restore = interrupt.handle_signals()
with interrupt.graceful():
    os.kill(os.getpid(), signal.SIGTERM)
    asked = interrupt.stop_requested() and interrupt.stop_signal() == signal.SIGTERM
    try:
        os.kill(os.getpid(), signal.SIGINT)
        second = None
    except interrupt.Stopped as e:
        second = interrupt.exit_code(e)
restore()
interrupt.handle_signals()()
print(json.dumps({"code": code, "restored": restored, "asked": asked, "second": second,
                  "clean": not interrupt.stop_requested()}), file=sys.stderr)
"""


@POSIX
def test_the_stop_policy_stops_any_verb_with_one_line_and_143_and_a_graceful_region_asks_first() -> None:
    """In a process of its own (signals sent to the test runner itself would reach its other threads):
    SIGTERM outside a graceful region stops any verb at once with one line and 143; inside one the
    first signal only asks, the second stops (130 for SIGINT); the handlers are put back."""
    proc = subprocess.run([sys.executable, "-c", _POLICY_SCRIPT], capture_output=True, text=True, env=_env(),
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert "litepose profile: stopped by SIGTERM" in lines
    assert json.loads(proc.stdout) == {"error": "litepose profile: stopped by SIGTERM", "exit_code": 143}
    assert json.loads(lines[-1]) == {"code": 143, "restored": True, "asked": True, "second": 130, "clean": True}


def test_too_deeply_nested_overrides_and_lock_records_are_clear_errors(tmp_path) -> None:
    from litepose.engine.config import parse_overrides

    with pytest.raises(ValueError, match="nested too deeply"):
        parse_overrides(["train.lr=" + "[" * 100_000])
    (tmp_path / ".litepose.lock").write_text("[" * 4000)  # a garbled record is only a missing name
    with FolderLock(tmp_path, "x") as lock:
        assert lock.took_over is None


def test_an_openvino_ir_without_its_bin_file_says_so(tmp_path) -> None:
    ov = pytest.importorskip("openvino")
    import warnings

    import torch

    from litepose.runtime import open_backend

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(torch.nn.Conv2d(3, 4, 3).eval(), (torch.zeros(1, 3, 16, 16),), str(tmp_path / "o.onnx"),
                          dynamo=False)  # fmt: skip
    ov.save_model(ov.convert_model(str(tmp_path / "o.onnx")), str(tmp_path / "net.xml"))
    (tmp_path / "net.bin").unlink()
    with pytest.raises(ValueError, match=r"net\.xml: OpenVINO cannot read it \(.*bin file cannot be found"):
        open_backend(tmp_path / "net.xml")  # the cause came last in OpenVINO's message, and was cut before


# -- found by benchmarks/hostile.py --------------------------------------------------------------------------


def test_export_and_transfer_refuse_to_write_over_their_input(tmp_path, capsys) -> None:
    import litepose

    ckpt = litepose.save_checkpoint(litepose.create_model("litepose-xs"), tmp_path / "model.pth")
    before = ckpt.read_bytes()
    assert main(["export", "--weights", str(ckpt), "--format", "torchscript", "--output", str(ckpt)]) == 2
    assert "would replace the input" in capsys.readouterr().err and ckpt.read_bytes() == before
    assert main(["transfer", "--supernet", str(ckpt), "--arch", "litepose-xs", "--output", str(ckpt)]) == 2
    assert "would replace the input" in capsys.readouterr().err and ckpt.read_bytes() == before


def test_a_lock_file_that_is_a_symlink_is_never_written_through(tmp_path, capsys) -> None:
    photo = _image(tmp_path / "photos" / "a.jpg")
    before = photo.read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    (out / ".litepose.lock").symlink_to(photo)
    assert main(["predict", str(_image(tmp_path / "in" / "b.jpg")), *FAST, "--output", str(out)]) == 2
    assert "is a symbolic link" in capsys.readouterr().err and photo.read_bytes() == before


def test_an_output_name_of_255_bytes_is_written(tmp_path) -> None:
    long = tmp_path / "in" / ("a" * 251 + ".png")  # its overlay, a...a.jpg, is 255 bytes: legal
    _image(long)
    assert main(["predict", str(long), *FAST, "--output", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / ("a" * 251 + ".jpg")).is_file()


def test_a_recursive_glob_through_a_symlink_loop_reads_each_file_once(tmp_path, capsys) -> None:
    _image(tmp_path / "in" / "a.jpg")
    (tmp_path / "in" / "loop").symlink_to(tmp_path / "in")
    pattern = str(tmp_path / "in" / "**" / "*.jpg")
    assert main(["predict", pattern, *FAST, "--output", str(tmp_path / "o"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 1


@POSIX
def test_signals_during_shutdown_do_not_change_the_exit_code(tmp_path) -> None:
    clip = _video(tmp_path / "clip.mp4", 300)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "litepose", "predict", str(clip), *FAST, "--output", str(out)]
    jsonl = out / "clip.jsonl"
    proc = _start(cmd, out, lambda: jsonl.is_file() and jsonl.read_text().count("\n") >= 3)
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:  # SIGTERM again and again, to the end
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.01)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err[-2000:]
    assert "Traceback" not in err


@POSIX
@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_a_full_disk_during_export_is_one_line_and_leaves_nothing(tmp_path, fmt) -> None:
    """The file-size limit makes every write past 64 KB fail (EFBIG), as a full disk would; torch used
    to abort the whole process when its archive writer failed."""
    import resource

    import litepose

    ckpt = litepose.save_checkpoint(litepose.create_model("litepose-xs"), tmp_path / "model.pth")
    out = tmp_path / "out"
    out.mkdir()
    cmd = [sys.executable, "-m", "litepose", "export", "--weights", str(ckpt), "--format", fmt,
           "--output", str(out / f"model.{fmt}"), "--json"]  # fmt: skip

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), preexec_fn=limit, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and str(out / f"model.{fmt}") in proc.stderr.strip().splitlines()[-1]
    assert json.loads(proc.stdout)["exit_code"] == 2 and list(out.iterdir()) == []


def test_train_refuses_to_write_over_its_own_config(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    cfg = run / "config.yaml"
    cfg.write_text("# my hand-written notes\ntrain:\n  epochs: 1\n")
    assert main(["train", "--config", str(cfg), "--output", str(run)]) == 2
    assert "would replace the input" in capsys.readouterr().err
    assert cfg.read_text().startswith("# my hand-written notes")
