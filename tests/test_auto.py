"""backend="auto" (the default), precision, and the export cache (issue 25, item 1)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import shared

from litepose import Predictor
from litepose.cli import main
from litepose.export import cache
from litepose.media import read_image
from litepose.runtime import auto

CKPT = "ref/model_XS_17.pth"
IMAGE = "ref/images/img_480x640.png"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private litepose home, so the export cache starts empty."""
    monkeypatch.setenv("LITEPOSE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    """A tiny LitePose checkpoint (random weights, input 64) that exports and quantises in a second."""
    import torch

    from litepose.models import save_checkpoint
    from litepose.models.litepose import LitePose
    from litepose.models.spec import ArchSpec

    torch.manual_seed(0)
    spec = ArchSpec.uniform(64, 16, (16, 16, 24, 32), (16, 16, 16), blocks=(1, 2, 1, 1))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    save_checkpoint(LitePose(spec, 17), path)
    return path


def test_the_rule_per_source_kind(tmp_path, monkeypatch) -> None:
    from litepose.models import create_model

    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"")
    assert auto.choose_backend(onnx).backend == "onnxruntime"  # an exported file: its own runtime
    assert auto.choose_backend(tmp_path / "m.xml").backend == "openvino"
    assert auto.choose_backend(create_model("litepose-xs")).backend == "torch"  # in memory: never exported
    with pytest.raises(ValueError, match="in-memory model"):
        auto.choose_backend(create_model("litepose-xs"), "int8")
    # a checkpoint on the CPU: the first installed runtime of the measured order
    monkeypatch.setattr(auto, "_on_cuda", lambda device: False)
    monkeypatch.setattr(auto, "_installed", lambda backend, precision: True)
    assert auto.choose_backend("x.pth").backend == auto.CPU_ORDER["fp32"][0]
    assert auto.choose_backend("x.pth", "int8").backend == auto.CPU_ORDER["int8"][0]
    assert auto.choose_backend("x.pth", legacy=True).backend == "torch"  # the original's decoding: bit-exact there
    monkeypatch.setattr(auto, "_installed", lambda backend, precision: backend == "openvino")
    assert auto.choose_backend("x.pth").backend == "openvino"
    monkeypatch.setattr(auto, "_installed", lambda backend, precision: False)
    assert auto.choose_backend("x.pth").backend == "torch"  # nothing else installed: torch
    with pytest.raises(ValueError, match="none is installed"):
        auto.choose_backend("x.pth", "int8")
    monkeypatch.setattr(auto, "cpu_has_bf16", lambda: False)
    with pytest.raises(ValueError, match="AVX512-BF16 or AMX"):
        auto.choose_backend("x.pth", "bf16")
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, int8"):
        auto.choose_backend("x.pth", "fp16")
    monkeypatch.setattr(auto, "_on_cuda", lambda device: True)
    assert auto.choose_backend("x.pth").backend == "torch"  # CUDA: torch


def test_the_cache_exports_once_and_keys_on_the_checkpoint(home, tiny_ckpt, tmp_path, monkeypatch, capsys) -> None:
    pytest.importorskip("onnxruntime")
    first = cache.cached_export(tiny_ckpt, "onnxruntime")
    assert first.is_file() and first.parent.parent == home / "exports"
    assert oct(first.parent.parent.stat().st_mode & 0o777) == "0o700"
    meta = json.loads((first.parent / "entry.json").read_text())
    assert meta["format"] == "onnx" and meta["precision"] == "fp32" and len(meta["checkpoint_sha256"]) == 64
    import litepose.export as ex

    def no_export(*a, **k):
        raise AssertionError("exported again although cached")

    monkeypatch.setattr(ex, "export_model", no_export)
    assert cache.cached_export(tiny_ckpt, "onnxruntime") == first  # reused
    monkeypatch.undo()
    monkeypatch.setenv("LITEPOSE_HOME", str(home))
    changed = tmp_path / "changed.pth"
    changed.write_bytes(tiny_ckpt.read_bytes() + b"\0")  # other bytes (torch reads the zip from its start)
    other = cache.cached_export(changed, "onnxruntime")
    assert other != first and other.is_file()
    assert sorted(e["folder"] for e in cache.entries()) == sorted(str(p.parent) for p in (first, other))
    assert not [p for p in (home / "exports").iterdir() if p.name.startswith(".")]  # no unfinished export left
    assert main(["weights", "exports", "--json"]) == 0  # the housekeeping verbs
    assert len(json.loads(capsys.readouterr().out)["exports"]) == 2
    assert main(["weights", "clean-exports", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == 2 and cache.entries() == []


def test_a_second_process_that_exported_too_keeps_the_first_entry(home, tiny_ckpt, monkeypatch) -> None:
    """Two processes exporting one key: the later rename fails, its copy goes, the entry stays whole."""
    pytest.importorskip("onnxruntime")
    winner = cache.cached_export(tiny_ckpt, "onnxruntime")
    data = winner.read_bytes()
    real_is_file = type(winner).is_file
    calls = {"n": 0}

    def first_look_misses(self):  # the other process has not finished when this one looks
        if self.name == "entry.json" and calls["n"] == 0:
            calls["n"] += 1
            return False
        return real_is_file(self)

    monkeypatch.setattr(type(winner), "is_file", first_look_misses)
    again = cache.cached_export(tiny_ckpt, "onnxruntime")
    monkeypatch.undo()
    assert calls["n"] == 1 and again == winner and winner.read_bytes() == data
    assert [p.name for p in (home / "exports").iterdir()] == [winner.parent.name]


def test_an_unwritable_home_exports_for_this_process(tmp_path, tiny_ckpt, monkeypatch) -> None:
    pytest.importorskip("onnxruntime")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("LITEPOSE_HOME", str(blocker))  # home/exports cannot be made
    path = cache.cached_export(tiny_ckpt, "onnxruntime")
    assert path.is_file() and not str(path).startswith(str(blocker))


def test_predictor_default_runs_a_checkpoint_on_the_auto_choice(home, monkeypatch) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(auto, "_installed", lambda backend, precision: backend == "onnxruntime")
    ckpt, image = shared(CKPT), read_image(shared(IMAGE), frame="upright")
    fast = Predictor(ckpt, device="cpu")
    assert fast.backend.name == "onnxruntime" and fast.runtime == (
        "onnxruntime fp32 (auto: the fastest fp32 runtime installed here)"
    )
    ref = Predictor(ckpt, backend="torch", device="cpu")
    assert ref.runtime == "torch fp32"
    (a, _ta, _g), (b, _tb, _h) = fast.maps(image), ref.maps(image)
    np.testing.assert_allclose(a, b, atol=1e-4)
    people, ref_people = fast(image), ref(image)
    assert len(people) == len(ref_people) > 5
    assert len(list((home / "exports").iterdir())) == 1  # exported once, into the cache


def test_precision_is_checked_against_the_file(home, tiny_ckpt) -> None:
    pytest.importorskip("onnxruntime")
    p = Predictor(tiny_ckpt, backend="onnxruntime", precision="int8")
    assert p.backend.precision == "int8" and p.backend.name == "onnxruntime"
    int8_file = next(e for e in cache.entries() if e["precision"] == "int8")["folder"]
    with pytest.raises(ValueError, match="precision fp32 asked for on onnxruntime, but it computes in int8"):
        Predictor(os.path.join(int8_file, "model.onnx"), precision="fp32")
    with pytest.raises(ValueError, match="bf16 runs on OpenVINO only"):
        Predictor(tiny_ckpt, backend="torch", precision="bf16")


def test_bf16_on_openvino_where_the_cpu_has_it(home, tiny_ckpt) -> None:
    pytest.importorskip("openvino")
    if not auto.cpu_has_bf16():
        pytest.skip("this CPU has no AVX512-BF16 / AMX")
    p = Predictor(tiny_ckpt, precision="bf16")
    assert p.backend.name == "openvino" and p.backend.precision == "bf16"
    ref = Predictor(tiny_ckpt, backend="openvino")
    image = read_image(shared(IMAGE), frame="upright")
    a, b = p.maps(image)[0], ref.maps(image)[0]
    assert not np.array_equal(a, b) and np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99  # bf16 computed, close


def test_cli_says_which_runtime_and_refuses_a_bad_precision(home, tiny_ckpt, tmp_path, capsys, monkeypatch) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(auto, "_installed", lambda backend, precision: backend == "onnxruntime")
    out = tmp_path / "out"
    rc = main(["predict", str(shared(IMAGE)), "--weights", str(tiny_ckpt), "--device", "cpu", "--output", str(out)])
    err = capsys.readouterr().err
    assert rc == 0 and "runtime: onnxruntime fp32 (auto: the fastest fp32 runtime installed here)" in err
    monkeypatch.setattr(auto, "cpu_has_bf16", lambda: False)
    rc = main(["predict", str(shared(IMAGE)), "--weights", str(tiny_ckpt), "--precision", "bf16",
               "--output", str(tmp_path / "o2")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].endswith("precision bf16 needs a CPU with AVX512-BF16 or AMX; this one has neither")


def test_export_takes_the_same_precision_option(tiny_ckpt, tmp_path, capsys, caplog) -> None:
    pytest.importorskip("onnxruntime")
    out = tmp_path / "q.onnx"
    args = ["export", "--weights", str(tiny_ckpt), "--precision", "int8", "--int8-images", "2", "--output", str(out)]
    assert main([*args, "--json"]) == 0
    assert not [r for r in caplog.records if "before quantization" in r.getMessage()]  # ONNX Runtime's advice
    assert json.loads(capsys.readouterr().out)["precision"] == "int8"
    assert Predictor(out).backend.precision == "int8"
    bf16 = ["export", "--weights", str(tiny_ckpt), "--precision", "bf16", "--output", str(tmp_path / "b.onnx")]
    assert main(bf16) == 2
    assert "bf16 is no file format" in capsys.readouterr().err


def test_benchmark_has_an_auto_row_and_filters_by_precision(tiny_ckpt, monkeypatch) -> None:
    pytest.importorskip("onnxruntime")
    from litepose import latency

    monkeypatch.setattr(auto, "_installed", lambda backend, precision: backend == "onnxruntime")
    variants = [("torch-eager", "fp32"), ("torchscript", "int8")]  # the last one fails: a row, then auto's
    monkeypatch.setattr(latency, "plan_variants", lambda backends=None: (variants, []))
    rows = latency.benchmark(str(tiny_ckpt), runs=1, warmup=0, flips=(False,), device="cpu")
    assert [(r["backend"], r.get("runs_on")) for r in rows] == [
        ("torch-eager", None), ("torchscript", None), ("auto", "onnxruntime")
    ] and "error" in rows[1]
    assert "auto:onnxruntime" in latency.format_table(rows)
    with pytest.raises(ValueError, match="nothing measured"):  # no int8 variant here, and auto is fp32
        latency.benchmark(str(tiny_ckpt), runs=1, warmup=0, flips=(False,), device="cpu", precision="int8")


def test_benchmark_plans_a_bf16_row_only_where_the_cpu_computes_bf16(tiny_ckpt, monkeypatch) -> None:
    pytest.importorskip("openvino")
    from litepose import latency

    monkeypatch.setattr(latency, "cpu_has_bf16", lambda: False)
    runnable, missing = latency.plan_variants(["openvino"])
    assert ("openvino", "bf16") not in runnable
    assert {"backend": "openvino", "precision": "bf16", "error": "this CPU has neither AVX512-BF16 nor AMX"} in missing
    monkeypatch.setattr(latency, "cpu_has_bf16", lambda: True)
    assert ("openvino", "bf16") in latency.plan_variants(["openvino"])[0]
    if auto.cpu_has_bf16():  # measured for real: OpenVINO's fp32 file computed in bf16
        rows = latency.benchmark(str(tiny_ckpt), backends=["openvino"], runs=1, warmup=0, flips=(False,),
                                 device="cpu", precision="bf16")  # fmt: skip
        assert [(r["backend"], r["precision"]) for r in rows] == [("openvino", "bf16")]


def test_video_runs_without_flip_test_by_default_and_images_with_it(tmp_path, capsys) -> None:
    import cv2

    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (96, 64))
    for i in range(3):
        writer.write(np.full((64, 96, 3), 40 * i, np.uint8))
    writer.release()
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), np.zeros((64, 96, 3), np.uint8))
    fast = ["--model", "litepose-xs", "--input-size", "64", "--threads", "1", "--no-video", "--json"]

    def flip(source: str, *extra: str) -> bool:
        assert main(["predict", source, *fast, *extra, "--output", str(tmp_path / f"o{len(extra)}{source[-3:]}")]) == 0
        out = capsys.readouterr()
        summary = json.loads(out.out)
        return summary["flip_test"]

    assert flip(str(clip)) is False  # a video: real time by default
    assert flip(str(clip), "--flip") is True
    assert flip(str(still)) is True  # an image keeps the paper's flip test
    assert main(["predict", str(clip), *fast, "--flip", "--no-flip", "--output", str(tmp_path / "x")]) == 2
