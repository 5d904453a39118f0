"""Edge runtimes (issue 25 item 4): NCNN (pnnx) and ExecuTorch (XNNPACK) as export formats and
backends: parity with the folded PyTorch network, metadata read back, int8, the Predictor and the
CLI, the benchmark rows, and one clear line when a package is missing."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from conftest import shared

import litepose
from litepose import formats
from litepose.cli import main
from litepose.export import int8 as q
from litepose.media import read_image
from litepose.normalization import IMAGENET
from litepose.runtime import open_backend
from litepose.runtime.base import MissingPackageError

pytestmark = pytest.mark.usefixtures("one_thread")

ncnn = pytest.importorskip("ncnn", reason="the 'ncnn' extra (pip install 'litepose[ncnn]')")
pytest.importorskip("pnnx", reason="the 'ncnn' extra (pip install 'litepose[ncnn]')")
pytest.importorskip("executorch", reason="the 'executorch' extra (pip install 'litepose[executorch]')")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """The reference XS checkpoint exported by the CLI to NCNN and to ExecuTorch (fp32, dynamic)."""
    folder = tmp_path_factory.mktemp("edge")
    weights = str(shared("ref/model_XS_17.pth"))
    files = {"ncnn": folder / "xs.ncnn.param", "executorch": folder / "xs.pte"}
    for fmt, path in files.items():
        assert main(["export", "--weights", weights, "--format", fmt, "--output", str(path)]) == 0
    return files


@pytest.fixture(scope="module")
def parity() -> dict:
    return torch.load(shared("ref/parity_XS_17.pt"), weights_only=True)


def _image() -> np.ndarray:
    return read_image(shared("ref/images/img_480x640.png"), frame="upright")


@pytest.mark.parametrize("backend", ["ncnn", "executorch"])
def test_export_equals_pytorch_within_1e4_and_reads_its_metadata_back(exported, parity, backend) -> None:
    path = exported[backend]
    if backend == "ncnn":  # NCNN's graph has no room for metadata: the sidecar beside it holds it
        assert path.with_suffix(".bin").is_file()
        side = path.with_name(path.name + ".json")
        assert json.loads(side.read_text())["litepose.joints"] == "17"
    b = open_backend(path)
    # ExecuTorch programs are static (input size x input size), NCNN graphs take any size
    assert (b.name, b.precision, b.static_size) == (backend, "fp32", 256 if backend == "executorch" else None)
    assert formats.default_backend(path) == backend
    model = litepose.load_checkpoint(shared("ref/model_XS_17.pth"))[0]
    info = b.info
    assert (info.num_joints, info.input_size, info.arch) == (17, 256, "litepose-xs")
    assert info.keypoints.names == model.keypoints.names and info.normalization == model.normalization
    for key in ("square", "nonsquare") if backend == "ncnn" else ("square",):  # flip runs the mirror too
        x = parity["inputs"][key].numpy()
        out, flipped = b.run(x, flip=True)
        for ours, ref in zip(out, parity["outputs"][key]):
            np.testing.assert_allclose(ours, ref.numpy(), atol=1e-4)
        mirrored, _ = b.run(np.ascontiguousarray(x[..., ::-1]), flip=False)
        for a, m in zip(flipped, mirrored):
            np.testing.assert_allclose(a, m, atol=1e-5)


@pytest.mark.parametrize("backend", ["ncnn", "executorch"])
def test_predictor_on_a_real_image_finds_the_people_torch_finds(exported, backend, tmp_path) -> None:
    """NCNN: the aspect-keeping resize, as torch; ExecuTorch: letterboxed into its one size, as an
    ONNX file exported with --static is."""
    image = _image()
    weights = shared("ref/model_XS_17.pth")
    if backend == "ncnn":
        ref = litepose.Predictor(weights, backend="torch", device="cpu")(image)
    else:
        from litepose.export import export_onnx

        model = litepose.load_checkpoint(weights)[0]
        ref = litepose.Predictor(export_onnx(model, tmp_path / "s.onnx", static=True))(image)
    people = litepose.Predictor(exported[backend])(image)
    assert len(people) == len(ref) > 0
    for a, b in zip(people, ref):
        np.testing.assert_allclose(a["keypoints"], b["keypoints"], atol=1e-2)


def test_cli_predict_and_benchmark_with_the_new_formats(exported, tmp_path, capsys) -> None:
    sample = str(shared("data/coco_sample"))
    for backend, path in exported.items():
        out = tmp_path / backend
        assert main(["predict", sample, "--weights", str(path), "--output", str(out), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["images"] == 4
        argv = ["benchmark", "--weights", str(path), "--runs", "1", "--warmup", "0", "--no-flip", "--json"]
        assert main(argv) == 0
        (row,) = json.loads(capsys.readouterr().out)["rows"]
        assert (row["backend"], row["precision"], row["flip"]) == (backend, "fp32", False)
        assert row["network_ms"]["median"] > 0


def test_ncnn_static_export_fixes_the_size_and_the_predictor_letterboxes(tmp_path) -> None:
    from litepose.export import export_ncnn

    model = litepose.load_checkpoint(shared("ref/model_XS_17.pth"))[0]
    path = export_ncnn(model, tmp_path / "s.ncnn.param", input_size=128, static=True)
    p = litepose.Predictor(path, flip_test=False)
    assert p.backend.static_size == 128
    maps = p.maps(_image())
    assert maps[0].shape[-2:] == (64, 64)  # 128x128 letterbox, 1/2-resolution heatmaps


def test_benchmark_lists_the_edge_rows_from_the_format_table() -> None:
    from litepose.latency import VARIANTS, available_variants

    for row in (("ncnn", "fp32"), ("ncnn", "int8"), ("executorch", "fp32"), ("executorch", "int8")):
        assert row in VARIANTS and row in available_variants()
    assert formats.export_modules("ncnn") == (("ncnn", "pnnx"), "ncnn")
    assert formats.export_modules("executorch", "int8") == (("executorch", "torchao"), "executorch")
    assert formats.FORMATS["ncnn"].suffix == ".ncnn.param" and formats.is_exported("a.ncnn.param")
    assert formats.FORMATS["executorch"].int8 and formats.FORMATS["ncnn"].int8


def _heatmap_correlations(fp32, int8, size: int) -> list[float]:
    """Per coco_sample image, the correlation of two predictors' heatmaps (flip test), each fed the
    image letterboxed into size x size (what a static network's predictor feeds it)."""
    corr = []
    for f in sorted(shared("data/coco_sample").glob("*.jpg")):
        image = _letterbox(read_image(f, frame="upright"), size)
        a, b = fp32.maps(image)[0], int8.maps(image)[0]
        corr.append(float(np.corrcoef(np.asarray(a).ravel(), np.asarray(b).ravel())[0, 1]))
    return corr


def test_ncnn_int8_heatmaps_correlate_with_fp32_on_real_images(tiny_trained_run, tmp_path) -> None:
    """int8 of a trained network (conftest's short SynthPose run, XS at 128), calibrated on the real
    images of coco_sample: its heatmaps against the folded fp32 network's (measured: 0.992-0.996)."""
    from litepose.export import export_model

    model = litepose.load_checkpoint(tiny_trained_run / "best.pth")[0]
    calib = shared("data/coco_sample")
    path = export_model(model, "ncnn", tmp_path / "int8.ncnn.param", int8=True, calib=calib, int8_images=4)
    int8 = litepose.Predictor(path)
    assert (int8.backend.name, int8.backend.precision) == ("ncnn", "int8")
    # the quantised layers carry int8_scale_term (XS: 102 of 113 convolutions; stem and heads not)
    assert path.read_text().count(" 8=1") == 102
    corr = _heatmap_correlations(litepose.Predictor(model, backend="torch", device="cpu"), int8, 128)
    assert len(corr) == 4 and 0.95 <= min(corr) and max(corr) < 0.99999, corr  # close, and truly quantised
    assert all(person["keypoints"].shape == (17, 3) for person in int8(_image()))


def test_executorch_int8_quantisation_keeps_the_heatmaps_on_real_images(tiny_trained_run) -> None:
    """The PT2E int8 graph that the ExecuTorch export lowers (XNNPACK quantizer, stem and heads in
    fp32), of the trained network, calibrated on coco_sample: its heatmaps against fp32's. The
    lowering itself is the next test's, on a small network: lowering XS int8 took minutes here.
    Measured on the lowered XS program: 0.992-0.995."""
    from litepose.export import inference_copy
    from litepose.export.executorch import _quantize

    model = litepose.load_checkpoint(tiny_trained_run / "best.pth")[0]
    images = q.calibration_images(shared("data/coco_sample"), 4)
    inputs = q.calibration_inputs(images, 128, model.normalization, static=True)
    net = inference_copy(model)
    quantised = _quantize(net, torch.zeros(1, 3, 128, 128), inputs)
    graph = quantised.graph
    assert sum("quantize_per_tensor" in str(n.target) for n in graph.nodes) > 50
    corr = []
    with torch.no_grad():
        for x in inputs[::2]:
            a, b = net(torch.from_numpy(x))[1], quantised(torch.from_numpy(x))[1]
            corr.append(float(np.corrcoef(a.numpy().ravel(), b.numpy().ravel())[0, 1]))
    assert len(corr) == 4 and 0.95 <= min(corr) and max(corr) < 0.99999, corr


def test_executorch_int8_program_runs_the_quantised_graph(tmp_path) -> None:
    """A small network exported int8 to a .pte: labelled int8, and XNNPACK's int8 kernels compute what
    the PT2E graph computes (not the fp32 network)."""
    from litepose.export import export_model, inference_copy
    from litepose.export.executorch import _quantize

    spec = litepose.ArchSpec.uniform(64, 8, (8, 8, 8, 8), (8, 8, 8), blocks=(1, 1, 1, 1), kernel=3)
    model = litepose.create_model(spec).eval()
    calib = shared("data/coco_sample")
    path = export_model(model, "executorch", tmp_path / "t.pte", int8=True, calib=calib, int8_images=2)
    b = open_backend(path)
    assert (b.name, b.precision, b.static_size) == ("executorch", "int8", 64)
    inputs = q.calibration_inputs(q.calibration_images(calib, 2), 64, IMAGENET, static=True)
    reference = _quantize(inference_copy(model), torch.zeros(1, 3, 64, 64), inputs)
    x = inputs[0]
    ours = b.run(x, flip=False)[0][0]
    with torch.no_grad():
        fake_quant = reference(torch.from_numpy(x))[0].numpy()
        fp32 = inference_copy(model)(torch.from_numpy(x))[0].numpy()
    # measured: 2e-9 from the PT2E graph, 2.4e-4 (its quantisation error) from fp32
    assert np.abs(ours - fake_quant).max() * 100 < np.abs(ours - fp32).max()


def _letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` letterboxed into size x size (what a static network's predictor feeds it)."""
    from litepose.preprocess import resize_image, square_geometry

    return resize_image(image, square_geometry(*image.shape[:2], size))


@pytest.mark.parametrize(
    ("module", "backend", "extra"), [("ncnn", "ncnn", "ncnn"), ("executorch", "executorch", "executorch")]
)
def test_a_missing_runtime_is_one_line_naming_the_extra(exported, monkeypatch, capsys, module, backend, extra) -> None:
    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(MissingPackageError, match=rf"pip install 'litepose\[{extra}\]'"):
        open_backend(exported[backend])
    code = main(["predict", str(shared("ref/images")), "--weights", str(exported[backend]), "--output", "-"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"litepose[{extra}]" in err[0], err


def test_a_missing_converter_is_one_line_naming_the_extra(monkeypatch, tmp_path) -> None:
    from litepose.export import export_ncnn

    monkeypatch.setitem(sys.modules, "pnnx", None)
    model = litepose.load_checkpoint(shared("ref/model_XS_17.pth"))[0]
    why = r"NCNN export needs the 'pnnx' package: pip install 'litepose\[ncnn\]'"
    with pytest.raises(MissingPackageError, match=why):
        export_ncnn(model, tmp_path / "x.ncnn.param")


def test_ncnn_without_its_sidecar_or_weights_is_a_clear_error(exported, tmp_path) -> None:
    param = tmp_path / "copy.ncnn.param"
    param.write_text(exported["ncnn"].read_text())
    with pytest.raises(ValueError, match=r"copy.ncnn.bin are not beside it"):
        open_backend(param)
    param.with_suffix(".bin").write_bytes(exported["ncnn"].with_suffix(".bin").read_bytes())
    with pytest.raises(ValueError, match=r"copy.ncnn.param.json is missing"):
        open_backend(param)


def test_the_predictor_exports_a_module_to_ncnn_on_the_fly() -> None:
    """``Predictor(module, backend="ncnn")`` exports to a temporary NCNN graph (as ONNX Runtime's
    predictor does to ONNX); the runtime itself refuses a module."""
    from litepose.runtime import needs_export

    spec = litepose.ArchSpec.uniform(64, 8, (8, 8, 8, 8), (8, 8, 8), blocks=(1, 1, 1, 1), kernel=3)
    model = litepose.create_model(spec).eval()
    assert needs_export(model, "ncnn") and needs_export("model.pth", "executorch")
    assert not needs_export("model.pte", "executorch") and not needs_export(model, "torchscript")
    with pytest.raises(ValueError, match="the ncnn backend runs an exported file: export it first"):
        open_backend(model, "ncnn")
    p = litepose.Predictor(model, backend="ncnn", input_size=64, flip_test=False)
    ref = litepose.Predictor(model, backend="torch-eager", device="cpu", input_size=64, flip_test=False)
    x = np.random.default_rng(0).integers(0, 255, (1, 64, 96, 3), np.uint8)
    ours, _ = p.backend.run(p.backend.inputs(x), flip=False)
    theirs, _ = ref.backend.run(ref.backend.inputs(x), flip=False)
    assert p.backend.name == "ncnn" and ours[0].shape == (1, 34, 16, 24)
    np.testing.assert_allclose(ours[0], theirs[0].numpy(), atol=1e-4)


def test_opening_an_executorch_program_prints_nothing(exported) -> None:
    """The runtime's own log lines (CPU probing, thread pool size) and torchao's CUDA-kernel warnings
    are held back: a user sees litepose's lines only (a fresh process, as a user's)."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; from litepose.runtime.et_backend import ExecuTorchBackend; "
            "b = ExecuTorchBackend(sys.argv[1], threads=2); b.run(np.zeros((1, 3, 256, 256), np.float32), False); "
            "print(b.static_size)")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code, str(exported["executorch"])], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "256", proc.stderr[-2000:]
    assert proc.stderr == "", proc.stderr[-2000:]
