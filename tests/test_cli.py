"""One consistent CLI and API: shared options with the same defaults in every verb, ``--json`` as
one object, clean keypoint-set errors, the docs table against the parsers, and one home per
concept (device, normalisation, image reading, augmentation names, the public API)."""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from conftest import shared
from test_predict_cli import _exif_rotated_jpeg

import litepose
from litepose.cli import main
from litepose.commands import _options, _reference

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "cli.md"

# The groups each verb takes ("input size" = --input-size of the model group alone).
EXPECTED = {
    "predict": {"model", "inference", "tracking", "device", "output", "json"},
    "val": {"data", "model", "inference", "tracking", "device", "output", "json"},
    "train": {"device", "output", "json"},
    "demo": {"input size", "device", "output", "json"},
    "synth": {"output", "json"},
    "transfer": {"data", "device", "output", "json"},
    "search": {"data", "device", "output", "json"},
    "profile": {"input size", "json"},
    "weights": {"json"},
    "export": {"model", "output", "json"},
    "benchmark": {"model", "inference", "device", "json"},
}
OUTPUT_KIND = {"transfer": "file", "export": "file"}  # every other verb with --output writes a folder


pytestmark = pytest.mark.usefixtures("one_thread")


def _image(path: Path, h: int = 96, w: int = 128) -> Path:
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8))
    return path


# -- shared options ---------------------------------------------------------------------------------


def test_every_verb_takes_its_shared_groups_with_the_same_defaults_and_help() -> None:
    parsers = _reference.verb_parsers()
    assert set(parsers) == set(EXPECTED)
    for verb, p in parsers.items():
        actions = {a.option_strings[-1]: a for a in p._actions if a.option_strings and a.help != argparse.SUPPRESS}
        groups = set()
        for title, flags in _options.GROUPS.items():
            taken = [f for f in flags if f in actions]
            if taken == ["--input-size"]:
                groups.add("input size")
            elif taken:
                assert taken == list(flags), (verb, title, taken)  # a group comes whole
                groups.add(title)
        assert groups == EXPECTED[verb], verb
        for flag, spec in _options.SHARED.items():
            if flag not in actions:
                continue
            a = actions[flag]
            default = False if spec.get("action") == "store_true" else spec.get("default")
            assert (a.default, a.help, a.metavar) == (default, spec["help"], spec.get("metavar")), (verb, flag)
        if "--output" in actions:
            kind = OUTPUT_KIND.get(verb, "folder")
            assert actions["--output"].help.startswith(f"output {kind}: "), verb
    # any flag that several verbs have means the same in each: one help text, one default
    seen: dict[str, tuple] = {}
    for verb, p in parsers.items():
        for a in p._actions:
            if a.option_strings and a.help != argparse.SUPPRESS and a.dest not in ("help", "data", "output"):
                first = seen.setdefault(a.option_strings[-1], (verb, a.help, a.default))
                assert first[1:] == (a.help, a.default), (a.option_strings[-1], first[0], verb)
    predictor_default = inspect.signature(litepose.Predictor).parameters["device"].default
    assert parsers["predict"].parse_args(["x"]).device == "auto" == predictor_default


def test_val_takes_every_inference_option_of_predict_and_they_reach_the_predictor() -> None:
    flags = ["--model", "litepose-xs", "--input-size", "128", "--threshold", "0.3", "--tag-threshold", "0.7",
             "--scales", "1,0.5", "--no-flip", "--legacy", "--max-people", "5", "--keypoints", "coco",
             "--device", "cpu"]  # fmt: skip
    parsers = _reference.verb_parsers()
    both = (parsers["predict"].parse_args(["img.jpg", *flags]), parsers["val"].parse_args(["--data", "d", *flags]))
    for args in both:
        p = _options.build_predictor(args)
        assert (p.input_size, p.scales, p.flip_test, str(p.device)) == (128, (1.0, 0.5), False, "cpu")
        s = p.decoder_settings
        assert (s["detection_threshold"], s["tag_threshold"], s["max_people"], s["legacy"]) == (0.3, 0.7, 5, True)


def test_val_weights_legacy_threshold_1_runs(tmp_path, capsys) -> None:
    data = shared("data/coco_sample/test_coco.json")
    weights = shared("ref/model_XS_17.pth")
    args = ["val", "--data", str(data), "--weights", str(weights), "--legacy", "--threshold", "1.0"]
    assert main([*args, "--no-flip", "--input-size", "128", "--threads", "1", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["protocol"] == "coco" and metrics["num_images"] == 4 and 0.0 <= metrics["AP"] <= 1.0


def test_unknown_keypoint_set_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    img = str(_image(tmp_path / "x.png"))
    for argv in (
        ["predict", img, "--model", "litepose-xs", "--keypoints", "mpii", "--output", str(tmp_path / "o")],
        ["val", "--data", str(tmp_path / "nope.json"), "--model", "litepose-xs", "--keypoints", "mpii"],
        ["predict", img, "--model", "litepose-xs", "--keypoints", str(tmp_path / "missing.yaml")],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and "keypoint" in err, err
    from litepose.data.keypoints import KeypointSetError, get_keypoint_set

    with pytest.raises(KeypointSetError, match="unknown keypoint set 'mpii'"):
        get_keypoint_set("mpii")
    with pytest.raises(KeypointSetError, match="14 joints but the model predicts 17"):
        litepose.Predictor(litepose.create_model("litepose-xs"), keypoints="crowdpose", device="cpu")


# -- --json ---------------------------------------------------------------------------------------------


def _documented_keys() -> dict[str, set[str]]:
    """The keys docs/cli.md lists per verb under 'JSON summaries'."""
    text = DOCS.read_text()
    section = text[text.index("## JSON summaries") : text.index("## Verbs and their options")]
    out = {}
    for line in section.splitlines():
        m = re.match(r"- `(\w+)`: (.*)", line)
        if m:
            out[m.group(1)] = set(re.findall(r"`([^`]+)`", m.group(2)))
    return out


def _tiny_train_config(tmp_path: Path) -> Path:
    from litepose.data.synth import make_synthpose

    make_synthpose(tmp_path / "synth", 4, seed=0, size="128x96", progress=False)
    cfg = {
        "model": {"arch": "litepose-xs", "input_size": 64},
        "data": {"train": str(tmp_path / "synth"), "workers": 0},
        "train": {"epochs": 1, "batch_size": 2, "max_steps_per_epoch": 1},
        "val": {"every": 0},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _tiny_supernet(tmp_path: Path) -> Path:
    from litepose.models import SuperLitePose, save_checkpoint
    from litepose.models.spec import ArchSpec

    tiny = ArchSpec.uniform(64, 16, (16, 16, 16, 16), (16, 16, 16), blocks=(1, 1, 1, 1))
    return save_checkpoint(SuperLitePose(17, tiny), tmp_path / "super.pth")


def test_json_is_one_object_for_every_verb(tmp_path, capsys) -> None:
    img = str(_image(tmp_path / "x.png"))
    coco = str(shared("data/coco_sample/test_coco.json"))
    runs = {
        "predict": ["predict", img, "--model", "litepose-xs", "--no-flip", "--input-size", "64",
                    "--output", str(tmp_path / "p")],
        "val": ["val", "--data", coco, "--gt-as-results", "--output", str(tmp_path / "v")],
        "train": ["train", "--config", str(_tiny_train_config(tmp_path)), "--output", str(tmp_path / "t")],
        "demo": ["demo", "--quick", "--minutes", "0.001", "--train-images", "4", "--val-images", "2",
                 "--input-size", "64", "--workers", "0", "--output", str(tmp_path / "d")],
        "synth": ["synth", "--num-images", "2", "--size", "96x64", "--output", str(tmp_path / "s")],
        "transfer": ["transfer", "--supernet", str(shared("ref/super_14.pth")), "--arch", "litepose-xs",
                     "--output", str(tmp_path / "xs.pth")],
        "search": ["search", "--supernet", str(_tiny_supernet(tmp_path)), "--data", str(tmp_path / "synth"),
                   "--budget", "30MMACs", "--sizes", "64", "--population", "2", "--generations", "0",
                   "--calib-images", "2", "--val-images", "1", "--output", str(tmp_path / "search")],
        "profile": ["profile", "litepose-xs"],
        "weights": ["weights"],
        "export": ["export", "--weights", str(shared("ref/model_XS_17.pth")), "--input-size", "64",
                   "--output", str(tmp_path / "xs.onnx")],
        "benchmark": ["benchmark", "--model", "litepose-xs", "--backend", "torch", "--input-size", "64", "--runs", "1",
                      "--warmup", "0", "--no-flip"],
    }  # fmt: skip
    assert set(runs) == set(EXPECTED)
    documented = _documented_keys()
    assert set(documented) == set(runs)
    for verb, argv in runs.items():
        code = main([*argv, "--json"])
        out = capsys.readouterr().out
        assert code == 0, (verb, out)
        summary = json.loads(out)  # the whole of stdout is one JSON object
        assert isinstance(summary, dict) and summary, verb
        assert set(summary) <= documented[verb], (verb, set(summary) - documented[verb])
    # an error is one object too, and so is a usage error
    assert main(["val", "--data", str(tmp_path / "missing.json"), "--gt-as-results", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["exit_code"] == 2
    assert main(["val", "--json"]) == 2
    assert "--data" in json.loads(capsys.readouterr().out)["error"]
    assert main(["synth", "--images", "2", "--output", str(tmp_path / "s2")]) == 2  # renamed: --num-images
    assert "--images is now --num-images" in capsys.readouterr().err


def test_json_stdout_holds_nothing_else_in_a_subprocess(tmp_path) -> None:
    img = str(_image(tmp_path / "x.png"))
    cmd = [sys.executable, "-m", "litepose", "predict", img, "--model", "litepose-xs", "--no-flip",
           "--input-size", "64", "--threads", "1", "--output", str(tmp_path / "o"), "--json"]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["images"] == 1 and summary["results_json"] is None
    assert "random weights" in proc.stderr  # the warning went to stderr


# -- the docs ---------------------------------------------------------------------------------------------


def test_docs_table_matches_the_parsers() -> None:
    """docs/cli.md's generated part is what the parsers give (to regenerate it:
    ``python -m litepose.commands._reference docs/cli.md``)."""
    assert _reference.generated_part(DOCS.read_text()) == _reference.render()


def test_public_api_and_its_docstring_agree() -> None:
    doc = litepose.__doc__
    for name in [n for n in litepose.__all__ if n != "__version__"] + list(litepose.SUBMODULES):
        assert f"``{name}" in doc, name
        assert getattr(litepose, name) is not None
    params = list(inspect.signature(litepose.save_checkpoint).parameters)
    assert params == ["model", "path", "extra"] and "save_checkpoint(model, path, extra=None)" in doc


def test_decode_is_reachable_after_import_litepose() -> None:
    code = "import litepose; import sys; assert 'litepose.decode' not in sys.modules; print(litepose.decode.group)"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0 and "function group" in proc.stdout, proc.stderr[-2000:]
    import litepose.testing  # the test-map generator is a testing helper, not part of the decoder

    assert not hasattr(litepose.decode, "synthetic") and callable(litepose.testing.synthetic_maps)


# -- one home per concept ---------------------------------------------------------------------------------


def test_device_choice() -> None:
    from litepose.device import pick_device

    assert pick_device("auto") == torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="not a torch device"):
        pick_device("toaster")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            pick_device("cuda")


def test_predictor_keeps_the_callers_model_and_honours_the_checkpoints_normalization(tmp_path) -> None:
    from litepose.normalization import IMAGENET, Normalization

    model = litepose.create_model("litepose-xs")
    elsewhere = litepose.Predictor(model, device="meta")  # another device: a copy moves, not the caller's model
    assert elsewhere.model is not model and next(model.parameters()).device.type == "cpu"
    assert litepose.Predictor(model, device="cpu").model is model
    assert litepose.Predictor(model).normalization == IMAGENET

    plain = Normalization(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    model.normalization = plain
    path = litepose.save_checkpoint(model, tmp_path / "plain.pth")
    loaded, info = litepose.load_checkpoint(path)
    assert info["normalization"] == plain.to_dict() and loaded.normalization == plain
    predictor = litepose.Predictor(path, device="cpu", input_size=64, backend="torch")
    img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    x, _ = predictor.network_input(img)
    torch.testing.assert_close(x[0], torch.from_numpy(img).permute(2, 0, 1).float() / 255)
    with pytest.raises(ValueError, match="must lie in"):
        Normalization(mean=(123.7, 116.3, 103.5))


def test_one_image_reader_with_an_explicit_frame(tmp_path) -> None:
    from litepose.data.coco import KeypointAnnotations
    from litepose.media import read_image

    rgb = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    _exif_rotated_jpeg(tmp_path / "r.jpg", rgb)
    assert read_image(tmp_path / "r.jpg", frame="stored").shape == (96, 128, 3)
    assert read_image(tmp_path / "r.jpg", frame="upright").shape == (128, 96, 3)
    with pytest.raises(TypeError):
        read_image(tmp_path / "r.jpg")  # the choice is the caller's
    with pytest.raises(ValueError, match="frame"):
        read_image(tmp_path / "r.jpg", frame="sideways")
    data = {
        "images": [{"id": 1, "file_name": "r.jpg", "width": 128, "height": 96}],
        "annotations": [],
        "categories": [{"id": 1, "name": "person", "keypoints": list(litepose.COCO.names)}],
    }
    ann = KeypointAnnotations(data, tmp_path / "a.json", images=tmp_path)
    assert ann.read_image(1).shape == (96, 128, 3)  # annotations: the stored frame


def test_augmentation_has_one_set_of_names(tmp_path) -> None:
    from litepose.engine.config import TrainConfig

    cfg = TrainConfig.load(None, ["augment.max_rotation=0", "augment.flip_prob=0"])
    t = cfg.transform_config(128)
    assert (t.max_rotation, t.flip_prob, t.min_scale, t.input_size) == (0.0, 0.0, 0.75, 128)
    for old, new in (("rotation", "max_rotation"), ("scale_min", "min_scale"), ("flip", "flip_prob")):
        with pytest.raises(ValueError, match=f"data.{old} is now augment.{new}"):
            TrainConfig.load(None, [f"data.{old}=0"])
    with pytest.raises(ValueError, match=r"belongs to section 'augment'"):
        TrainConfig.from_dict({"data": {"max_translate": 0}})
    for path in sorted((REPO / "configs").glob("*.yaml")):
        TrainConfig.load(path)  # every shipped config uses the kept names


def test_no_docs_or_code_file_holds_merge_conflict_markers() -> None:
    """A merge left unresolved (docs/cli.md once had one) is caught by name and line."""
    found = []
    for folder in ("docs", "litepose", "tests", "benchmarks", "configs"):
        for f in sorted((REPO / folder).rglob("*")):
            if f.suffix not in {".md", ".py", ".yaml", ".yml", ".toml", ".c"} or not f.is_file():
                continue
            for n, line in enumerate(f.read_text(errors="replace").splitlines(), start=1):
                if line.startswith(("<<<<<<< ", ">>>>>>> ")) or line == "=======":
                    found.append(f"{f.relative_to(REPO)}:{n}")
    for f in (REPO / "README.md", REPO / "pyproject.toml", REPO / "Makefile"):
        for n, line in enumerate(f.read_text().splitlines(), start=1):
            if line.startswith(("<<<<<<< ", ">>>>>>> ")) or line == "=======":
                found.append(f"{f.relative_to(REPO)}:{n}")
    assert not found, f"merge conflict markers at {found}"


def test_the_clis_defaults_are_the_librarys() -> None:
    """Each default is stated once: every option that sets a library parameter defaults to that
    parameter's own default (Predictor, TrackerConfig, OneEuroConfig, SearchSettings)."""
    import dataclasses

    from litepose.search.evolution import SearchSettings
    from litepose.track import OneEuroConfig, TrackerConfig

    parsers = _reference.verb_parsers()
    predictor = inspect.signature(litepose.Predictor).parameters
    fields = {
        "tracker": {f.name: f.default for f in dataclasses.fields(TrackerConfig)},
        "smoother": {f.name: f.default for f in dataclasses.fields(OneEuroConfig)},
    }
    checked = 0
    for flag, spec in _options.SHARED.items():
        action = next(a for p in parsers.values() for a in p._actions if flag in a.option_strings)
        if "predictor" in spec:
            default = predictor[spec["predictor"]].default
            expected = (not default) if flag == "--no-flip" else default
            got = action.default
            if flag == "--scales" and got is not None:
                got = tuple(got)
            assert got == expected or (got is None and flag in ("--input-size", "--keypoints")), (flag, got, expected)
            checked += 1
        for kind in ("tracker", "smoother"):
            if kind in spec:
                assert action.default == fields[kind][spec[kind]], (flag, action.default)
                checked += 1
    search = {a.dest: a.default for a in parsers["search"]._actions}
    for f in dataclasses.fields(SearchSettings):
        if f.name in search:
            assert search[f.name] == f.default, f.name
            checked += 1
    assert checked >= 15
