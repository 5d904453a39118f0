"""Export (ONNX / OpenVINO / TorchScript, int8), the runtime backends, the fast post-processing
chain, ``litepose export`` / ``benchmark``, and predicting from an ONNX file without torch."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tomllib
import torch
from conftest import shared

import litepose
from litepose.cli import main
from litepose.decode import group
from litepose.decode import testtime as tt
from litepose.export import export_onnx, export_openvino, export_torchscript
from litepose.export import int8 as q
from litepose.media import read_image
from litepose.normalization import IMAGENET
from litepose.runtime import open_backend

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return litepose.load_checkpoint(shared("ref/model_XS_17.pth"))[0]


@pytest.fixture(scope="module")
def files(model, tmp_path_factory) -> dict[str, Path]:
    """The fp32 exports of model_XS_17, made once."""
    d = tmp_path_factory.mktemp("export")
    return {
        "onnx": export_onnx(model, d / "xs.onnx"),
        "openvino": export_openvino(model, d / "xs.xml"),
        "torchscript": export_torchscript(model, d / "xs.torchscript"),
    }


@pytest.fixture(scope="module")
def parity() -> dict:
    return torch.load(shared("ref/parity_XS_17.pt"), weights_only=True)


def _outputs(backend, x: torch.Tensor) -> list[np.ndarray]:
    xin = x if backend.name.startswith("torch") else x.numpy()
    out, _ = backend.run(xin, flip=False)
    return [o.numpy() if hasattr(o, "numpy") else o for o in out]


# -- export ---------------------------------------------------------------------------------------


def test_every_export_equals_pytorch_within_1e4_and_carries_metadata(files, parity) -> None:
    assert not list(files["onnx"].parent.glob("*.data"))  # one self-contained ONNX file
    assert files["openvino"].with_suffix(".bin").is_file()
    for fmt, path in files.items():
        backend = open_backend(path)
        assert backend.name == {"onnx": "onnxruntime"}.get(fmt, fmt) and backend.precision == "fp32"
        info = backend.info
        assert (info.num_joints, info.keypoints.name, info.input_size, info.arch) == (17, "coco", 256, "litepose-xs")
        assert info.normalization == IMAGENET and backend.static_size is None
        for key in ("square", "nonsquare"):  # dynamic H and W: 256x256 and 256x320
            got = _outputs(backend, parity["inputs"][key])
            for g, want in zip(got, parity["outputs"][key]):
                np.testing.assert_allclose(g, want.numpy(), atol=1e-4, err_msg=f"{fmt} {key}")


def test_openvino_flip_test_runs_the_mirror_as_a_second_request_with_the_same_outputs(files, parity) -> None:
    """With two threads OpenVINO runs the image and its mirror as two requests on two streams: the
    same outputs as one batch of two, and the mirror's are the mirrored input's."""
    from litepose.runtime.ov_backend import OpenVinoBackend

    x = parity["inputs"]["nonsquare"].numpy()
    b = OpenVinoBackend(files["openvino"], threads=2)
    out, flipped = b.run(x, flip=True)
    assert b._pair is not None  # the two-stream path ran
    batch_out, batch_flipped = OpenVinoBackend(files["openvino"], threads=1).run(x, flip=True)
    for got, want in zip(out + flipped, batch_out + batch_flipped):
        np.testing.assert_allclose(got, want, atol=1e-4)
    for got, want in zip(out, parity["outputs"]["nonsquare"]):
        np.testing.assert_allclose(got, want.numpy(), atol=1e-4)
    mirrored, _ = b.run(np.ascontiguousarray(x[..., ::-1]), flip=False)
    for a, m in zip(flipped, mirrored):
        np.testing.assert_allclose(a, m, atol=1e-5)


def test_static_export_fixes_the_size_and_the_predictor_letterboxes(model, tmp_path) -> None:
    path = export_onnx(model, tmp_path / "s.onnx", input_size=128, static=True)
    p = litepose.Predictor(path)
    assert p.backend.static_size == 128 and p.input_size == 128
    people = p(np.random.default_rng(0).integers(0, 255, (90, 160, 3), dtype=np.uint8))
    assert all(person["keypoints"].shape == (17, 3) for person in people)
    with pytest.raises(ValueError, match="--static"):
        litepose.Predictor(path, input_size=256)


def test_int8_runs_and_its_heatmaps_correlate_with_fp32(tiny_trained_run, tmp_path) -> None:
    """QDQ int8 of a trained network (conftest's short SynthPose run, XS at 128) on the real images
    of coco_sample, calibrated on them: the predictor's heatmaps (flip test) against fp32's.
    Measured here: 0.958-0.975 per image; 0.82-0.88 with the stem quantised too (before
    KEEP_FP32 held it). The random-weight fixtures are no test of int8: their activations span
    ranges no trained network has (0.85-0.89 whatever is kept in fp32)."""
    model = litepose.load_checkpoint(tiny_trained_run / "best.pth")[0]
    fp32_path = export_onnx(model, tmp_path / "tiny.onnx")
    calib = q.calibration_images(shared("data/coco_sample"), 4)
    path = q.quantize_onnx(fp32_path, tmp_path / "int8.onnx", q.calibration_inputs(calib, 128, IMAGENET))
    fp32, int8 = litepose.Predictor(fp32_path), litepose.Predictor(path)
    assert int8.backend.precision == "int8" and int8.backend.info.num_joints == 17
    _assert_convs_int8_except_kept(path)
    corr = []
    for f in sorted(shared("data/coco_sample").glob("*.jpg")):
        image = read_image(f, frame="upright")
        a, b = fp32.maps(image)[0], int8.maps(image)[0]
        corr.append(float(np.corrcoef(a.ravel(), b.ravel())[0, 1]))
        assert all(person["keypoints"].shape == (17, 3) for person in int8(image))
    assert len(corr) == 4 and min(corr) >= 0.95, corr


def test_openvino_int8_with_nncf(model) -> None:
    pytest.importorskip("nncf")  # the optional 'openvino' extra
    from litepose.export import openvino_model
    from litepose.runtime.metadata import from_strings
    from litepose.runtime.ov_backend import read_rt_info

    inputs = q.calibration_inputs(q.calibration_images(None, 2), 64, IMAGENET)
    qm = q.quantize_openvino(openvino_model(model, input_size=64), inputs)
    assert from_strings(read_rt_info(qm), "int8").precision == "int8"
    assert sum(op.get_type_name() == "FakeQuantize" for op in qm.get_ops()) >= 10  # really quantised


def _assert_convs_int8_except_kept(path) -> None:
    """The graph is quantised where it should be: every Conv outside KEEP_FP32 reads a dequantised
    int8 input and int8 weights (QDQ, fused by ONNX Runtime into an integer kernel), the kept ones
    (stem, heads) do not. A label alone (metadata) proves nothing."""
    import onnx

    proto = onnx.load(str(path))
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    producer = {o: n.op_type for n in proto.graph.node for o in n.output}
    kept = [n.name for n in convs if any(part in n.name for part in q.KEEP_FP32)]
    int8 = [n.name for n in convs if producer.get(n.input[0]) == producer.get(n.input[1]) == "DequantizeLinear"]
    assert len(convs) > len(kept) > 0 and sorted(int8) == sorted(set(n.name for n in convs) - set(kept))
    assert sum(n.op_type == "QuantizeLinear" for n in proto.graph.node) >= len(int8)
    assert q.quantized_onnx_nodes(proto) == ([n.name for n in convs if n.name in int8], kept)


def test_int8_export_is_checked_and_refuses_a_graph_it_did_not_quantise(tiny_model, tmp_path, monkeypatch) -> None:
    import sys
    import types

    from litepose.export import export_model, openvino_model

    path = export_model(tiny_model, "onnx", tmp_path / "tiny-int8.onnx", input_size=64, int8=True, int8_images=1)
    _assert_convs_int8_except_kept(path)
    assert litepose.Predictor(path).backend.precision == "int8"
    fp32 = export_onnx(tiny_model, tmp_path / "tiny.onnx", input_size=64)
    inputs = q.calibration_inputs(q.calibration_images(None, 1), 64, IMAGENET)
    for kw in ({"keep_fp32": ("/",)}, {"op_types": ("MatMul",)}):  # nothing left to quantise
        with pytest.raises(ValueError, match="quantised no .* refusing to label an fp32 network int8"):
            q.quantize_onnx(fp32, tmp_path / "not-int8.onnx", inputs, **kw)
        assert not (tmp_path / "not-int8.onnx").exists()

    # OpenVINO: a quantiser that hands back its input unchanged is refused too (a stand-in for nncf)
    fake = types.SimpleNamespace(
        quantize=lambda model, *a, **k: model, Dataset=lambda x: x, IgnoredScope=lambda **k: None,
        QuantizationPreset=types.SimpleNamespace(PERFORMANCE=None),
    )  # fmt: skip
    monkeypatch.setitem(sys.modules, "nncf", fake)
    with pytest.raises(ValueError, match="inserted no FakeQuantize"):
        q.quantize_openvino(openvino_model(tiny_model, input_size=64), inputs)


def test_quantized_openvino_ops_finds_fake_quantize() -> None:
    import openvino as ov
    from openvino import opset13 as ops

    x = ops.parameter([1, 3, 8, 8], np.float32, name="input")
    lo, hi = ops.constant(np.float32(0)), ops.constant(np.float32(1))
    weights = ops.constant(np.ones((4, 3, 1, 1), np.float32))
    plain = ov.Model([ops.convolution(x, weights, [1, 1], [0, 0], [0, 0], [1, 1])], [x], "fp32")
    assert q.quantized_openvino_ops(plain) == []
    fq = ops.fake_quantize(x, lo, hi, lo, hi, 256, name="fq")
    quant = ov.Model([ops.convolution(fq, weights, [1, 1], [0, 0], [0, 0], [1, 1])], [x], "int8")
    assert q.quantized_openvino_ops(quant) == ["fq"]


# -- backends and predictor -------------------------------------------------------------------------


def test_onnx_predictor_finds_the_same_people_as_torch_on_coco_sample(model, files) -> None:
    torch_p = litepose.Predictor(model, device="cpu", detection_threshold=0.2)
    onnx_p = litepose.Predictor(files["onnx"], detection_threshold=0.2)
    assert torch_p.backend.name == "torch" and onnx_p.backend.name == "onnxruntime" and onnx_p.model is None
    assert torch_p.model is model  # the plain model is kept; the folded copy runs
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    images = sorted(shared("data/coco_sample").glob("*.jpg"))
    found = 0
    for f in images:
        image = read_image(f, frame="upright")
        a, b = torch_p(image), onnx_p(image)
        assert len(a) == len(b), f.name
        for pa, pb in zip(a, b):
            np.testing.assert_allclose(pa["keypoints"], pb["keypoints"], atol=0.05)
            assert abs(pa["score"] - pb["score"]) < 1e-4
        found += len(a)
    assert found > 0


@pytest.mark.parametrize("backend", ["torch-eager", "torch", "onnxruntime", "openvino"])
def test_original_chain_with_legacy_on_every_backend_matches_the_original_at_a_stated_tolerance(
    model, files, backend
) -> None:
    """End to end (network included) with --chain original --legacy: the e2e fixture's people, same count
    and order, x/y within 1e-3 px and scores within 1e-5 (README tolerances). Not bit for bit: the
    network's float sums differ from the original's by up to ~5e-6 (thread count, folded BatchNorm,
    another runtime), and ONNX Runtime / OpenVINO upsample with cv2.resize (docs/inference.md)."""
    runs = json.loads(shared("ref/e2e_XS_17.json").read_text())["images"]["img_480x640.png"]["runs"]
    image = read_image(shared("ref/images/img_480x640.png"), frame="upright")
    source = {"onnxruntime": files["onnx"], "openvino": files["openvino"]}.get(backend, model)
    for threshold in ("1.0", "0.1"):
        p = litepose.Predictor(source, backend=backend, chain="original", legacy=True,
                               detection_threshold=float(threshold), device="cpu")  # fmt: skip
        got, want = p(image), runs[threshold]["people"]
        assert len(got) == len(want)
        for g, w in zip(got, want):
            wk = np.asarray(w["keypoints"], np.float32)[:, :3]
            np.testing.assert_allclose(g["keypoints"][:, :2], wk[:, :2], rtol=0, atol=1e-3)
            np.testing.assert_allclose(g["keypoints"][:, 2], wk[:, 2], rtol=0, atol=1e-5)
            assert abs(g["score"] - w["score"]) <= 1e-5


def test_chain_option_help_says_the_fixes_apply_without_legacy() -> None:
    from litepose.commands._options import SHARED

    text = SHARED["--chain"]["help"]
    assert "--legacy" in text.split("(default")[0] and "fixes" in text  # the decoder is the original's only with it


def test_backend_choice_and_errors(model, files, tmp_path) -> None:
    eager = litepose.Predictor(model, backend="torch-eager", device="cpu")
    assert eager.backend.name == "torch-eager" and eager.backend.net is model
    assert litepose.Predictor(files["onnx"], backend="openvino").backend.name == "openvino"
    with pytest.raises(ValueError, match="unknown backend"):
        litepose.Predictor(model, backend="tvm")
    with pytest.raises(ValueError, match="its own backend"):
        litepose.Predictor(files["onnx"], backend="torch")
    with pytest.raises(FileNotFoundError):
        litepose.Predictor(tmp_path / "absent.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(ValueError, match="junk.onnx"):
        litepose.Predictor(tmp_path / "junk.onnx")
    with pytest.raises(ValueError, match="chain"):
        litepose.Predictor(model, chain="quick")
    assert litepose.Predictor(model).chain == "fast" and litepose.Predictor(model, legacy=True).chain == "original"


def test_predicting_from_onnx_or_openvino_imports_no_torch(files) -> None:
    code = (
        "import sys, numpy as np, litepose; "
        f"[litepose.Predictor(f)(np.zeros((120, 160, 3), np.uint8)) for f in ({str(files['onnx'])!r}, "
        f"{str(files['openvino'])!r})]; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]


# -- the fast chain -----------------------------------------------------------------------------------

# decoder fixtures of well-separated synthetic people (no noise, no spurious blobs)
CLEAN = ("p1_clean_L1", "p1_clean_L2", "p2_separated_L2", "p2_overlap_L2", "p5_L2", "p5_128x192_L2", "p12_L2")


def test_fast_chain_finds_the_original_chains_people_on_the_decoder_fixtures() -> None:
    """The fixtures' maps stand for the network's 1/2-resolution output: the original chain brings
    them to 2x (the input size) and groups there, the fast chain groups them as they are. Stated
    tolerance: the same number of people, and per person at least 85% of its joints (90% on
    average) within 2 px of the original chain's, at the input size."""
    cases = {}
    for f in ("decode_cases.pt", "decode_cases_1.pt", "decode_cases_2.pt", "decode_cases_4.pt"):
        cases.update({c["name"]: c for c in torch.load(shared(f"ref/{f}"), weights_only=True)["cases"]})
    for name in CLEAN:
        det, tag = cases[name]["det"].numpy(), cases[name]["tag"].numpy()
        k, h, w = det.shape[1:]
        planes = tag[0].transpose(3, 0, 1, 2).reshape(1, -1, h, w)
        full = tt._up(np.concatenate([det, planes], 1), (2 * h, 2 * w))[0]
        tags_full = full[k:].reshape(-1, k, 2 * h, 2 * w).transpose(1, 2, 3, 0)
        original, _ = group(full[:k], tags_full)
        fast, _ = group(det[0], tag[0], subpixel="parabola")
        fast[..., :2] *= 2  # 1/2-resolution pixels -> input pixels (both with the +0.5 centre convention)
        assert len(fast) == len(original), name
        shares = []
        for o in original:
            best = 0.0
            for f in fast:
                close = (np.abs(o[:, :2] - f[:, :2]).max(axis=1) <= 2.0) & (o[:, 2] > 0) & (f[:, 2] > 0)
                best = max(best, close.sum() / max(((o[:, 2] > 0) | (f[:, 2] > 0)).sum(), 1))
            shares.append(best)
        assert min(shares) >= 0.85 and np.mean(shares) >= 0.9, (name, shares)


def test_fast_chain_maps_are_at_half_the_input_size(model) -> None:
    p = litepose.Predictor(model, chain="fast", device="cpu", input_size=128)
    hm, tags, geometry = p.maps(np.zeros((96, 128, 3), np.uint8))
    assert hm.shape == (17, 64, 96) and tags.shape == (17, 64, 96, 2) and p.map_size(geometry) == (96, 64)
    with pytest.raises(ValueError, match="subpixel"):
        group(hm, tags, subpixel="cubic")


# -- command line -------------------------------------------------------------------------------------


def test_cli_export_then_predict_then_benchmark_json(tmp_path, capsys) -> None:
    weights = str(shared("ref/model_XS_17.pth"))
    onnx_file = tmp_path / "xs.onnx"
    assert main(["export", "--weights", weights, "--output", str(onnx_file), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["output"] == str(onnx_file) and summary["precision"] == "fp32"
    out = tmp_path / "pred"
    sample = str(shared("data/coco_sample"))
    code = main(["predict", sample, "--weights", str(onnx_file), "--output", str(out), "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["images"] == 4
    assert main(["export", "--weights", weights, "--format", "torchscript", "--int8"]) == 2
    assert "torchscript" in capsys.readouterr().err

    argv = ["benchmark", "--model", "litepose-xs", "--backend", "torch", "--input-size", "64", "--runs", "2",
            "--warmup", "0", "--json"]  # fmt: skip
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["backend"], r["flip"]) for r in rows] == [
        (b, f) for b in ("torch-eager", "torch") for f in (True, False)
    ]  # eager unfolded torch first, then the folded one, each with and without flip test
    argv = ["benchmark", "--weights", str(onnx_file), "--runs", "1", "--warmup", "0", "--no-flip", "--json"]
    assert main(argv) == 0
    rows += json.loads(capsys.readouterr().out)["rows"]
    assert (rows[-1]["backend"], rows[-1]["flip"]) == ("onnxruntime", False)
    for r in rows:
        assert r["model"] == "litepose-xs" and r["precision"] == "fp32" and r["fps"] > 0
        assert r["input"] == ([64, 128] if r["backend"].startswith("torch") else [256, 384])  # a 640x480 frame
        for s in ("network_ms", "preprocess_ms", "decode_ms", "total_ms"):
            assert set(r[s]) == {"median", "min", "max"} and r[s]["min"] <= r[s]["median"] <= r[s]["max"]


def test_a_venv_without_torch_predicts_from_onnx(files, tmp_path) -> None:
    """pip install --no-deps litepose plus the 'runtime' extra's packages: predict runs, torch absent."""
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["runtime"]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--disable-pip-version-check"]
    for args in (["--no-deps", str(REPO)], extra):
        r = subprocess.run(pip + args, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run([str(py), "-c", "import torch"], capture_output=True)
    assert r.returncode != 0  # no torch in this venv
    out = tmp_path / "pred"
    r = subprocess.run(
        [str(py), "-m", "litepose", "predict", str(shared("data/coco_sample")), "--weights", str(files["onnx"]),
         "--output", str(out), "--threads", "1", "--json"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["images"] == 4 and len(list(out.glob("*.jpg"))) == 4


# -- benchmark: a backend that cannot run is said, never dropped (issue #23) ------------------------


@pytest.fixture(scope="module")
def tiny_model() -> torch.nn.Module:
    spec = litepose.ArchSpec.uniform(64, 8, (8, 8, 8, 8), (8, 8, 8), blocks=(1, 1, 1, 1), kernel=3)
    return litepose.create_model(spec).eval()


def _bench(source, **kw):
    from litepose.latency import benchmark

    image = np.zeros((64, 96, 3), np.uint8)
    return benchmark(source, image=image, runs=1, warmup=0, flips=(False,), **kw)


def _ort_run_fails(monkeypatch, precision: str | None = None) -> None:
    from litepose.runtime.ort_backend import OnnxRuntimeBackend

    real = OnnxRuntimeBackend.forward

    def forward(self, x):
        if precision is None or self.precision == precision:
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code (injected)")
        return real(self, x)

    monkeypatch.setattr(OnnxRuntimeBackend, "forward", forward)


def test_benchmark_runtime_failure_is_a_row_and_the_others_are_measured(tiny_model, monkeypatch) -> None:
    from litepose.latency import format_table

    _ort_run_fails(monkeypatch, "int8")
    rows = _bench(tiny_model, backends=["onnxruntime"], int8_images=1)
    assert [(r["backend"], r["precision"], "error" in r) for r in rows] == [
        ("torch-eager", "fp32", False), ("onnxruntime", "fp32", False), ("onnxruntime", "int8", True),
    ]  # fmt: skip
    assert "RuntimeError" in rows[-1]["error"] and "injected" in rows[-1]["error"]
    table = format_table(rows)
    assert "onnxruntime      int8  not measured: RuntimeError: [ONNXRuntimeError]" in table


def test_benchmark_cli_runtime_failure_is_one_line_exit_2(tiny_model, monkeypatch, tmp_path, capsys) -> None:
    onnx_file = export_onnx(tiny_model, tmp_path / "tiny.onnx")
    argv = ["benchmark", "--weights", str(onnx_file), "--runs", "1", "--warmup", "0", "--no-flip"]
    _ort_run_fails(monkeypatch)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "error: nothing measured: onnxruntime: RuntimeError: [ONNXRuntimeError]" in err
    monkeypatch.undo()

    import onnxruntime

    def no_session(*a, **k):
        raise onnxruntime.capi.onnxruntime_pybind11_state.Fail("session creation failed (injected)")

    monkeypatch.setattr(onnxruntime, "InferenceSession", no_session)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "onnxruntime" in err and "session creation failed (injected)" in err


def test_benchmark_says_a_requested_backend_it_cannot_run(tiny_model, monkeypatch, capsys) -> None:
    import litepose.latency as lb

    rows = _bench(tiny_model, backends=["torchscript"])  # used to print the eager row only
    assert [(r["backend"], "error" in r) for r in rows] == [("torch-eager", False), ("torchscript", False)]

    monkeypatch.setattr(lb, "_installed", lambda m: m not in ("openvino", "nncf"))
    argv = ["benchmark", "--model", "litepose-xs", "--backend", "openvino", "--input-size", "64", "--runs", "1"]
    assert main(argv) == 2  # nothing asked for can run: said before anything is measured
    err = capsys.readouterr().err
    assert "openvino fp32: not installed here: openvino" in err and "Traceback" not in err
    monkeypatch.setattr(lb, "_installed", lambda m: m != "nncf")
    monkeypatch.setattr(lb, "cpu_has_bf16", lambda: False)  # the bf16 row: test_auto, where the CPU has it
    rows = _bench(tiny_model, backends=["openvino"])
    assert [(r["backend"], r["precision"], "error" in r) for r in rows] == [
        ("torch-eager", "fp32", False), ("openvino", "fp32", False), ("openvino", "bf16", True),
        ("openvino", "int8", True),
    ]  # fmt: skip
    assert "nncf" in rows[-1]["error"]
    assert re.search(r"openvino +int8 +not measured: not installed here: nncf", capsys.readouterr().err)


# -- one format table; the runtime below the export (issue #24) -----------------------------------------


def test_one_format_table_gives_the_cli_choices_the_suffixes_and_the_exporters(tmp_path) -> None:
    import argparse

    import litepose.export as ex
    from litepose import formats, runtime
    from litepose.commands import export as export_cmd
    from litepose.commands._options import SHARED, exported_weights

    assert SHARED["--backend"]["choices"] == (formats.AUTO_BACKEND, *formats.BACKENDS)
    suffixes = ".onnx onnxruntime, .xml openvino, .torchscript torchscript, .ncnn.param ncnn, .pte executorch"
    assert f"an exported file on its own runtime: {suffixes};" in SHARED["--backend"]["help"]
    p = argparse.ArgumentParser()
    export_cmd.add_arguments(p)
    fmt_action = next(a for a in p._actions if "--format" in a.option_strings)
    assert tuple(fmt_action.choices) == tuple(formats.FORMATS)
    assert tuple(formats.FORMATS) == ("onnx", "openvino", "torchscript", "ncnn", "executorch")
    assert runtime.FILE_SUFFIXES is formats.FILE_SUFFIXES and runtime.default_backend is formats.default_backend
    for name, f in formats.FORMATS.items():
        assert callable(getattr(ex, f.exporter)) and f.backend in formats.BACKENDS
        assert ex.default_output("m.pth", name) == Path(f"m{f.suffix}")
        assert formats.is_exported(f"net{f.suffix.upper()}")
        assert formats.default_backend(Path(f"a{f.suffix}")) == f.backend
        assert exported_weights(argparse.Namespace(weights=str(tmp_path / f"n{f.suffix}")))
    assert not formats.is_exported("model.pth") and not formats.is_exported(torch.nn.Linear(1, 1))
    assert not exported_weights(argparse.Namespace(weights=str(tmp_path / "n.pth")))
    assert formats.runs_suffix("openvino", "a.onnx") and not formats.runs_suffix("onnxruntime", "a.xml")
    # what each latency variant needs comes from the same table
    assert formats.export_modules("openvino", "int8") == (("openvino", "onnx", "nncf"), "openvino,export")
    with pytest.raises(ValueError, match="export is for --format onnx, openvino, ncnn or executorch, not torchscript"):
        ex.export_model(torch.nn.Linear(1, 1), "torchscript", tmp_path / "x.torchscript", int8=True, input_size=64)


def test_the_format_table_imports_no_runtime_and_the_runtime_nothing_from_export() -> None:
    import ast

    code = (
        "import sys, litepose.formats; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx', 'onnxruntime', 'openvino')]; "
        "assert not heavy, heavy"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    for f in sorted((REPO / "litepose" / "runtime").glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                target = "." * node.level + (node.module or "")
                assert not target.startswith(("..export", "litepose.export")), f"{f.name} imports {target}"
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("litepose.export") for a in node.names), f.name


def test_the_predictor_exports_a_module_on_the_fly_the_runtime_refuses_it(tiny_model) -> None:
    from litepose.runtime import needs_export

    assert needs_export(tiny_model, "onnxruntime") and needs_export("model.pth", "openvino")
    assert not needs_export(tiny_model, "torch") and not needs_export("model.onnx", "openvino")
    with pytest.raises(ValueError, match="LitePose: the onnxruntime backend runs an exported file: export it first"):
        open_backend(tiny_model, "onnxruntime")
    with pytest.raises(ValueError, match="threads must be at least 1"):
        litepose.Predictor(tiny_model, backend="onnxruntime", threads=0)
    p = litepose.Predictor(tiny_model, backend="onnxruntime", input_size=64, flip_test=False)
    assert p.backend.name == "onnxruntime" and p.model is None
    ref = litepose.Predictor(tiny_model, backend="torch-eager", device="cpu", input_size=64, flip_test=False)
    x = np.random.default_rng(0).integers(0, 255, (1, 64, 64, 3), np.uint8)
    ours, _ = p.backend.run(p.backend.inputs(x), flip=False)
    theirs, _ = ref.backend.run(ref.backend.inputs(x), flip=False)
    np.testing.assert_allclose(ours[0], theirs[0].numpy(), atol=1e-4)
