"""The model family: parity with the original, state_dict layouts, checkpoints, folding, profiling."""

from __future__ import annotations

import json
import random

import pytest
import torch
from conftest import shared
from torch.utils.flop_counter import FlopCounterMode

import litepose
from litepose.models import (
    ArchSpec,
    CheckpointError,
    LitePose,
    SuperLitePose,
    create_model,
    extract_subnet,
    fold_batchnorm,
    load_checkpoint,
    profile_model,
    sample_arch,
    save_checkpoint,
)
from litepose.normalization import Normalization

SIZES = {"XS": "litepose-xs", "S": "litepose-s", "M": "litepose-m", "L": "litepose-l"}


def _manifest_keys(name: str) -> list[tuple[str, list[int]]]:
    man = json.loads(shared(f"ref/manifest_{name}.json").read_text())
    return [(e["key"], e["shape"]) for e in man["state_dict"]]


def _keys(model: torch.nn.Module) -> list[tuple[str, list[int]]]:
    return [(k, list(v.shape)) for k, v in model.state_dict().items()]


@pytest.mark.parametrize("joints", [14, 17])
@pytest.mark.parametrize("size", list(SIZES))
def test_presets_match_manifests_key_for_key(size: str, joints: int) -> None:
    assert _keys(create_model(SIZES[size], num_joints=joints)) == _manifest_keys(f"{size}_{joints}")


@pytest.mark.parametrize("joints", [14, 17])
def test_supernet_matches_manifest(joints: int) -> None:
    assert _keys(create_model("litepose-super", num_joints=joints)) == _manifest_keys(f"super_{joints}")


@pytest.mark.parametrize(
    "file, layout",
    [
        ("model_XS_17.pth", "original"),
        ("mmpose_early_XS_17.pth", "mmpose-early"),
        ("mmpose_convmodule_XS_17.pth", "mmpose-convmodule"),
    ],
)
def test_released_checkpoint_reproduces_original_outputs(file: str, layout: str) -> None:
    """The original's release and its two mmpose-port rewrites, loaded from nothing but their
    path, give the original's outputs."""
    model, info = load_checkpoint(shared(f"ref/{file}"))
    assert info["arch"] == "litepose-xs" and info["num_joints"] == 17 and info["input_size"] == 256
    assert info["source"] == "foreign" and info["keypoints"]["name"] == "coco"
    assert info["layout"] == layout
    ref = torch.load(shared("ref/parity_XS_17.pt"), weights_only=True)
    with torch.no_grad():
        for name, x in ref["inputs"].items():
            out = model(x)
            assert len(out) == 2
            for o, r in zip(out, ref["outputs"][name]):
                assert o.shape == r.shape
                torch.testing.assert_close(o, r, atol=1e-4, rtol=0)


def test_supernet_as_xs_and_extracted_subnet_reproduce_original() -> None:
    sup, info = load_checkpoint(shared("ref/super_14.pth"))
    assert isinstance(sup, SuperLitePose) and info["arch"] == "super" and info["num_joints"] == 14
    ref = torch.load(shared("ref/supernet_parity_14_XS.pt"), weights_only=True)
    x = ref["inputs"]["XS"]
    sub = litepose.extract_subnet(sup, "litepose-xs").eval()
    assert isinstance(sub, LitePose) and sub.arch == "litepose-xs"
    with torch.no_grad():
        for o, r in zip(sup(x, "litepose-xs"), ref["supernet_outputs"]["XS"]):
            torch.testing.assert_close(o, r, atol=1e-4, rtol=0)
        for o, r in zip(sub(x), ref["subnet_outputs"]["XS"]):
            torch.testing.assert_close(o, r, atol=1e-4, rtol=0)


def test_extract_subnet_with_kernel_transform_and_fewer_blocks(tmp_path) -> None:
    """Kernels 5/3 (learned transform), shallower stages and a JSON spec: subnet == supernet."""
    sup = SuperLitePose(17).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for m in sup.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    spec = ArchSpec.from_json(
        {
            "img_size": 320,
            "input_channel": 16,
            "deconv_setting": [24, 24, 16],
            "backbone_setting": [
                {"num_blocks": 2, "stride": 2, "channel": 16, "block_setting": [[6, 5], [6, 3]]},
                {"num_blocks": 3, "stride": 2, "channel": 24, "block_setting": [[6, 3], [6, 7], [6, 5]]},
                {"num_blocks": 2, "stride": 2, "channel": 48, "block_setting": [[6, 7], [6, 3]]},
                {"num_blocks": 2, "stride": 1, "channel": 40, "block_setting": [[6, 5], [6, 5]]},
            ],
        }
    )
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(spec.to_json()))
    x = torch.randn(1, 3, 320, 256)
    sub = extract_subnet(sup, str(path)).eval()
    with torch.no_grad():
        for a, b in zip(sup(x, spec), sub(x)):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_random_subnets_run_and_extract() -> None:
    rng = random.Random(3)
    sup = SuperLitePose(14).eval()
    for _ in range(2):
        spec = sample_arch(rng, kernels=(7, 5, 3))
        x = torch.randn(1, 3, 64, 96)
        with torch.no_grad():
            a = sup(x, spec)
            b = extract_subnet(sup, spec).eval()(x)
        assert a[0].shape == (1, 28, 16, 24) and a[1].shape == (1, 14, 32, 48)
        for u, v in zip(a, b):
            torch.testing.assert_close(u, v, atol=1e-4, rtol=0)


def test_not_a_subnet_is_refused() -> None:
    big = ArchSpec.uniform(256, 32, (32, 64, 96, 160), (64, 48, 32))
    with pytest.raises(ValueError, match="stem 32 > 24"):
        extract_subnet(SuperLitePose(17), big)


def test_fold_batchnorm_keeps_outputs() -> None:
    model, _ = load_checkpoint(shared("ref/model_XS_17.pth"))
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(1, 3, 256, 192)
    with torch.no_grad():
        for a, b in zip(model(x), folded(x)):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_any_aspect_ratio_and_clear_error_otherwise() -> None:
    model = create_model("xs").eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 160, 352))
    assert out[0].shape == (1, 34, 40, 88) and out[1].shape == (1, 17, 80, 176)
    with pytest.raises(ValueError, match="multiples of 16"):
        model(torch.randn(1, 3, 250, 256))


# -- checkpoints --------------------------------------------------------------------------------


def test_self_describing_checkpoint_round_trip(tmp_path) -> None:
    spec = ArchSpec.uniform(320, 16, (16, 24, 40, 64), (16, 16, 24), blocks=(2, 2, 3, 2), kernel=5)
    model = create_model(spec, num_joints=5)
    model.keypoints = litepose.KeypointSet.from_dict(
        {"name": "hand", "names": ["a", "b", "c", "d", "e"], "skeleton": [[0, 1], [1, 2]], "flip_pairs": [[3, 4]]}
    )
    path = save_checkpoint(model, tmp_path / "m.pth", extra={"epoch": 3})
    loaded, info = load_checkpoint(path)
    assert info["source"] == "litepose" and info["arch"] == "custom" and info["num_joints"] == 5
    assert info["input_size"] == 320 and info["extra"] == {"epoch": 3}
    assert ArchSpec.from_json(info["spec"]) == spec
    assert loaded.keypoints.name == "hand" and loaded.keypoints.flip_index == (0, 1, 2, 4, 3)
    assert info["normalization"]["mean"] == [0.485, 0.456, 0.406]
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])


def test_create_model_with_weights_restores_what_load_checkpoint_does(tmp_path) -> None:
    spec = ArchSpec.uniform(320, 16, (16, 24, 40, 64), (16, 16, 24), blocks=(2, 2, 3, 2), kernel=5)
    model = create_model(spec, num_joints=5)
    model.keypoints = litepose.KeypointSet.from_dict(
        {"name": "hand", "names": ["a", "b", "c", "d", "e"], "skeleton": [[0, 1]], "flip_pairs": [[3, 4]]}
    )
    model.input_size = 256
    model.normalization = Normalization((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    path = save_checkpoint(model, tmp_path / "m.pth")
    made, (loaded, _) = create_model(spec, num_joints=5, weights=path), load_checkpoint(path)
    for m in (made, loaded):
        assert m.keypoints.name == "hand" and m.input_size == 256 and not m.training
        assert m.normalization.mean == (0.5, 0.5, 0.5) and m.normalization.std == (0.25, 0.25, 0.25)
    assert all(torch.equal(v, made.state_dict()[k]) for k, v in model.state_dict().items())
    with pytest.raises(CheckpointError, match=r"m\.pth: does not fit the model"):
        create_model("litepose-xs", num_joints=5, weights=path)  # the architecture named is the one built


def test_foreign_custom_spec_is_inferred_from_shapes(tmp_path) -> None:
    spec = ArchSpec.uniform(256, 24, (24, 32, 48, 96), (32, 24, 24), blocks=(3, 4, 4, 3), kernel=3, expansion=4)
    model = create_model(spec, num_joints=14)
    path = tmp_path / "foreign.pth.tar"
    torch.save({"epoch": 1, "state_dict": {"module." + k: v for k, v in model.state_dict().items()}}, path)
    _, info = load_checkpoint(path)
    assert info["arch"] == "custom" and info["num_joints"] == 14
    assert ArchSpec.from_json(info["spec"]) == spec


def test_wrong_number_of_joints_is_a_clear_error() -> None:
    with pytest.raises(CheckpointError, match=r"final_refined\.0\.conv\.3\.weight.*\(28, 24, 1, 1\).*\(34, 24, 1, 1\)"):
        load_checkpoint(shared("ref/model_XS_17.pth"), num_joints=14)
    with pytest.raises(CheckpointError, match="model_XS_17.pth"):
        load_checkpoint(shared("ref/model_XS_17.pth"), arch="litepose-s")


def test_truncated_text_empty_and_foreign_files(tmp_path) -> None:
    data = shared("ref/model_XS_17.pth").read_bytes()
    trunc = tmp_path / "trunc.pth"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="trunc.pth.*not a readable PyTorch checkpoint"):
        load_checkpoint(trunc)
    text = tmp_path / "notes.pth"
    text.write_text("these are not weights\n")
    with pytest.raises(CheckpointError, match=r"notes\.pth: not a PyTorch checkpoint") as caught:
        load_checkpoint(text)
    assert "weights_only=False" not in str(caught.value)  # the one thing a user must not be told to do
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(empty)
    other = tmp_path / "resnet.pth"
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8)).state_dict(), other)
    with pytest.raises(CheckpointError, match="resnet.pth.*not a LitePose checkpoint"):
        load_checkpoint(other)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_checkpoint(tmp_path / "missing.pth")


# -- profiling -----------------------------------------------------------------------------------

# README table of ../shared/ref (17 joints): params, true MACs, paper-convention MACs.
TABLE = {
    "litepose-xs": (1_675_912, 885_841_920, 1_205_215_232),
    "litepose-s": (2_731_624, 3_624_375_552, 4_991_521_024),
    "litepose-m": (3_534_336, 5_275_717_888, 7_853_610_240),
    "litepose-l": (5_738_672, 9_979_297_792, 13_730_381_824),
}
TABLE_14 = {  # true / paper MACs in G
    "litepose-xs": (0.883, 1.202),
    "litepose-s": (3.614, 4.981),
    "litepose-m": (5.264, 7.842),
    "litepose-l": (9.962, 13.713),
}


@pytest.mark.parametrize("name", list(TABLE))
def test_profile_matches_reference_table(name: str) -> None:
    params, macs, paper = TABLE[name]
    p = profile_model(name)
    assert p.params == pytest.approx(params, rel=0.01)
    assert p.macs == pytest.approx(macs, rel=0.01)
    assert p.macs_paper == pytest.approx(paper, rel=0.01)
    assert p.params == sum(x.numel() for x in create_model(name).parameters())
    p14 = profile_model(name, num_joints=14)
    assert p14.macs / 1e9 == pytest.approx(TABLE_14[name][0], rel=0.01)
    assert p14.macs_paper / 1e9 == pytest.approx(TABLE_14[name][1], rel=0.01)


@pytest.mark.parametrize(
    "arch,size",
    [
        ("litepose-xs", (256, 256)),
        ("litepose-s", (192, 320)),
        (ArchSpec.uniform(256, 8, (8, 16, 24, 40), (8, 8, 8), kernel=3), (128, 64)),
    ],
)
def test_profile_true_macs_equal_flop_counter(arch, size) -> None:
    model = create_model(arch).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, *size))
    assert profile_model(arch, input_size=size).macs == counter.get_total_flops() // 2


def test_one_topology_walk_builds_profiles_and_times_the_network() -> None:
    # the modules, the MACs and the latency table's layers all come from models.topology.walk
    from litepose.models.topology import Block, Fusion, Output, Stem, walk
    from litepose.search.cost import layers_of

    spec = ArchSpec.uniform(256, 8, (8, 16, 24, 40), (8, 16, 24), blocks=(1, 2, 3, 1), kernel=3, expansion=4)
    layers = walk(spec, 5, (128, 64))
    assert isinstance(layers[0], Stem) and layers[0].size_out == (64, 32)
    blocks = [x for x in layers if isinstance(x, Block)]
    assert [(b.stage, b.index, b.stride) for b in blocks][:3] == [(0, 0, 2), (1, 0, 2), (1, 1, 1)]
    assert blocks[-1].size_out == (8, 4)  # 1/16 of the input
    fusions, outputs = [x for x in layers if isinstance(x, Fusion)], [x for x in layers if isinstance(x, Output)]
    net = LitePose(spec, 5)
    assert [len(s) for s in net.stage] == [1, 2, 3, 1]
    assert [(m.in_channels, m.out_channels) for m in net.deconv_refined] == [(f.cin_head, f.cout) for f in fusions]
    assert [(m.in_channels, m.out_channels) for m in net.deconv_raw] == [(f.cin_raw, f.cout) for f in fusions]
    assert [(o.cin_head, o.cin_raw, o.cout, o.size) for o in outputs] == [(16, 8, 10, (32, 16)), (24, 8, 5, (64, 32))]
    assert [m.conv[0].in_channels for m in net.final_raw] == [o.cin_raw for o in outputs]
    assert len(layers_of(spec, 5)) == 1 + len(blocks) + 3 * len(fusions) + 3 * len(outputs)


def test_profile_cli(capsys) -> None:
    from litepose.cli import main

    assert main(["profile", "litepose-xs", "litepose-s", "litepose-m", "litepose-l"]) == 0
    out = capsys.readouterr().out
    for figure in (
        "0.886",
        "3.624",
        "5.276",
        "9.979",
        "1.205",
        "4.992",
        "7.854",
        "13.730",
        "1.68",
        "2.73",
        "3.53",
        "5.74",
    ):
        assert figure in out
    assert main(["profile", "litepose-xs", "--json", "--num-joints", "14"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["models"][0]["macs"] == profile_model("litepose-xs", 14).macs and data["num_joints"] == 14


# -- architecture JSON validation (issue #23) -------------------------------------------------------


def _xs_json() -> dict:
    return ArchSpec.uniform(256, 16, (16, 32, 48, 80), (16, 24, 24), blocks=(1, 1, 1, 1)).to_json()


def _set(d: dict, path: tuple, value) -> dict:
    node = d
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return d


@pytest.mark.parametrize(
    "path,value,field",
    [
        (("input_channel",), -16, "input_channel"),
        (("input_channel",), 0, "input_channel"),
        (("input_channel",), 16.5, "input_channel"),
        (("backbone_setting", 0, "channel"), -16, r"backbone_setting\[0\]\.channel"),
        (("backbone_setting", 2, "channel"), 10**7, r"backbone_setting\[2\]\.channel"),
        (("backbone_setting", 1, "channel"), "32", r"backbone_setting\[1\]\.channel"),
        (("deconv_setting", 1), 0, r"deconv_setting\[1\]"),
        (("deconv_setting", 2), 100_000, r"deconv_setting\[2\]"),
        (("backbone_setting", 3, "num_blocks"), -1, r"backbone_setting\[3\]\.num_blocks"),
        (("backbone_setting", 3, "num_blocks"), 0, r"backbone_setting\[3\]\.num_blocks"),
        (("backbone_setting", 0, "block_setting", 0, 1), -3, r"backbone_setting\[0\]\.block_setting\[0\] kernel"),
        (("backbone_setting", 0, "block_setting", 0, 1), 1001, r"backbone_setting\[0\]\.block_setting\[0\] kernel"),
        (("backbone_setting", 0, "block_setting", 0, 0), 1e6, r"block_setting\[0\] expansion"),
        (("backbone_setting", 0, "block_setting", 0, 0), -6, r"block_setting\[0\] expansion"),
        (("backbone_setting", 2, "stride"), -2, "strides"),
        (("img_size",), 0, "img_size"),
        (("img_size",), -256, "img_size"),
        (("img_size",), 250, "img_size"),
        (("img_size",), 1 << 20, "img_size"),
    ],
)
def test_nonsense_architecture_json_is_refused_naming_file_and_field(tmp_path, path, value, field) -> None:
    """0, negative, fractional or huge widths, kernels, depths, strides and sizes: one ValueError naming
    the file and the field, before any layer is built."""
    f = tmp_path / "arch.json"
    f.write_text(json.dumps(_set(_xs_json(), path, value)))
    with pytest.raises(ValueError, match=rf"arch\.json: .*{field}"):
        ArchSpec.load(f)
    with pytest.raises(ValueError, match=field):
        profile_model(str(f))


def test_profile_cli_refuses_negative_width_without_a_parameter_count(tmp_path, capsys) -> None:
    from litepose.cli import main

    f = tmp_path / "neg.json"
    f.write_text(json.dumps(_set(_xs_json(), ("backbone_setting", 0, "channel"), -16)))
    assert main(["profile", str(f)]) == 2
    captured = capsys.readouterr()
    assert "params" not in captured.out and "neg.json" in captured.err and "channel" in captured.err
    assert "Traceback" not in captured.err


def test_architecture_caps_keep_every_published_network() -> None:
    from litepose.models.spec import MAX_EXPANSION, MAX_KERNEL, MAX_WIDTH, PRESETS, SUPERNET_SPEC

    for spec in [*PRESETS.values(), SUPERNET_SPEC]:
        assert ArchSpec.from_json(spec.to_json()) == spec
        assert max(spec.stem_channels, *spec.deconv, *(s.channels for s in spec.stages)) <= MAX_WIDTH
        assert all(k <= MAX_KERNEL and t <= MAX_EXPANSION for s in spec.stages for t, k in s.blocks)
    at_caps = ArchSpec.uniform(256, MAX_WIDTH, (8,) * 4, (8, 8, 8), blocks=(1, 1, 1, 1), kernel=MAX_KERNEL)
    assert at_caps.stem_channels == MAX_WIDTH
    with pytest.raises(ValueError, match="input_channel must be 1 to 1024"):
        ArchSpec.uniform(256, MAX_WIDTH + 1, (8,) * 4, (8, 8, 8))
