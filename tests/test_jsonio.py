"""Every JSON / YAML the library reads goes through one reader: too deep nesting, invalid text and
non-UTF-8 bytes are one ValueError naming the file, never a RecursionError traceback (issue #23)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DEEP = "[" * 100_000 + "]" * 100_000  # valid JSON and YAML; Python's parsers recurse once per level


def _deep(tmp_path: Path, name: str) -> Path:
    p = tmp_path / name
    p.write_text(DEEP)
    return p


def test_reader_turns_every_decode_failure_into_a_value_error_naming_the_file(tmp_path) -> None:
    from litepose.data.jsonio import parse_json, read_json, read_yaml

    for reader in (read_json, read_yaml):
        with pytest.raises(ValueError, match=r"deep\.json: nested too deeply"):
            reader(_deep(tmp_path, "deep.json"))
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"a": "\xff\xfe\xfa"}')
    with pytest.raises(ValueError, match=r"bad\.json"):
        read_json(bad)
    with pytest.raises(ValueError, match=r"bad\.json"):
        read_yaml(bad)
    with pytest.raises(ValueError, match=r"somewhere, line 3: nested too deeply"):
        parse_json(DEEP, "somewhere, line 3")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_json(tmp_path / "missing.json")
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"a": [[[1]]], "é": "ü"}))
    assert read_json(ok) == read_yaml(ok) == {"a": [[[1]]], "é": "ü"}


def test_library_readers_refuse_deep_json_with_one_error(tmp_path) -> None:
    from litepose.data import load_annotations
    from litepose.data.description import keypoint_set_from_coco, keypoint_set_from_yaml
    from litepose.data.synth import synthpose_version
    from litepose.engine.config import TrainConfig
    from litepose.eval import load_results
    from litepose.models.spec import ArchSpec
    from litepose.runtime.metadata import from_strings
    from litepose.search.cost import LatencyTable

    deep = _deep(tmp_path, "deep.json")
    for read in (
        ArchSpec.load,
        load_annotations,
        load_results,
        keypoint_set_from_coco,
        TrainConfig.load,
        lambda p: keypoint_set_from_yaml(p.rename(p.with_suffix(".yaml"))),
        lambda p: LatencyTable("torch", 1, path=p),
    ):
        with pytest.raises(ValueError, match=r"deep\.(json|yaml).*nested too deeply"):
            read(deep)
        deep = _deep(tmp_path, "deep.json")
    with pytest.raises(ValueError, match=r"model\.onnx: metadata litepose\.keypoints: nested too deeply"):
        from_strings({"litepose.joints": "17", "litepose.keypoints": DEEP}, "model.onnx")
    folder = tmp_path / "synth"
    folder.mkdir()
    (folder / "annotations.json").write_text(DEEP)
    assert synthpose_version(folder) is None  # documented: unreadable -> None


def test_search_state_nested_too_deeply_is_refused(tmp_path) -> None:
    from litepose.models.space import SearchSpace
    from litepose.search.cost import Budget
    from litepose.search.evolution import SearchSettings, evolve

    (tmp_path / "state.json").write_text(DEEP)
    with pytest.raises(ValueError, match=r"state\.json: nested too deeply"):
        evolve(SearchSpace(), Budget(1e9, "macs", "1GMACs"), lambda s: 0.0, lambda s: 0.0, SearchSettings(), tmp_path)
    (tmp_path / "state.json").write_text("[]")
    with pytest.raises(ValueError, match=r"state\.json: not a search state"):
        evolve(SearchSpace(), Budget(1e9, "macs", "1GMACs"), lambda s: 0.0, lambda s: 0.0, SearchSettings(), tmp_path)


def test_metrics_lines_nested_too_deeply_are_skipped_like_a_cut_line(tmp_path) -> None:
    from litepose.viz.curves import plot_training_curves

    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text(DEEP + "\n")
    assert plot_training_curves(metrics, tmp_path / "curves.png") is None


def test_cli_deep_architecture_json_is_one_line_exit_2(tmp_path, capsys) -> None:
    from litepose.cli import main

    assert main(["profile", str(_deep(tmp_path, "arch.json"))]) == 2
    err = capsys.readouterr().err
    assert "arch.json" in err and "nested too deeply" in err and "Traceback" not in err
