"""Datasets: descriptions, COCO-format loading and validation, masks, transforms, samples."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import shared
from torch.utils.data import DataLoader, RandomSampler

from litepose.data import COCO, CROWDPOSE
from litepose.data.coco import load_annotations
from litepose.data.dataset import KeypointDataset, MultiSizeBatchSampler
from litepose.data.description import load_keypoint_set
from litepose.data.transforms import TrainTransform, TransformConfig, affine_matrix, apply_affine

MINI_TRAIN = "data/coco_minicoco_sample/annotations/person_keypoints_train2017.json"
MINI_VAL = "data/coco_minicoco_sample/annotations/person_keypoints_val2017.json"


# -- helpers ----------------------------------------------------------------------------------------


def _write_dataset(tmp: Path, names: list[str], people: list[list[float]], **category) -> Path:
    """A one-image COCO-format dataset in ``tmp`` (image 120x160, the given keypoint lists)."""
    cv2.imwrite(str(tmp / "a.jpg"), np.full((120, 160, 3), 90, np.uint8))
    anns = [
        {"id": i + 1, "image_id": 7, "category_id": 1, "iscrowd": 0, "keypoints": kps, "bbox": [10, 10, 50, 80]}
        for i, kps in enumerate(people)
    ]
    data = {
        "images": [{"id": 7, "file_name": "a.jpg", "width": 160, "height": 120}],
        "annotations": anns,
        "categories": [{"id": 1, "name": "thing", "keypoints": names, **category}],
    }
    path = tmp / "ann.json"
    path.write_text(json.dumps(data))
    return path


def _crowd_region(ann, image_id: int) -> np.ndarray:
    from pycocotools import mask as mask_utils

    info = ann.image_info(image_id)
    crowd = [a for a in ann.annotations(image_id) if a["iscrowd"]]
    assert len(crowd) == 1
    rle = mask_utils.frPyObjects(crowd[0]["segmentation"], info["height"], info["width"])
    return mask_utils.decode(rle).astype(bool)


# -- descriptions -----------------------------------------------------------------------------------


def test_builtin_and_yaml_descriptions(tmp_path):
    assert load_keypoint_set("coco") is COCO and load_keypoint_set("CrowdPose") is CROWDPOSE
    y = tmp_path / "hand.yaml"
    y.write_text(
        "name: hand\nkeypoints: [wrist, left_tip, right_tip, centre]\n"
        "skeleton: [[wrist, left_tip], [0, 2], [wrist, centre]]\nflip_pairs: [[left_tip, right_tip]]\n"
        "sigmas: [0.05, 0.02, 0.02, 0.03]\ngrouping_order: [centre, wrist, left_tip, right_tip]\n"
    )
    ks = load_keypoint_set(y)
    assert ks.name == "hand" and ks.num_joints == 4
    assert ks.skeleton == ((0, 1), (0, 2), (0, 3))
    assert ks.flip_index == (0, 2, 1, 3)
    assert ks.sigmas == (0.05, 0.02, 0.02, 0.03) and ks.grouping_order == (3, 0, 1, 2)
    y.write_text("keypoints: [a, b]\nflip_pairz: [[a, b]]\n")
    with pytest.raises(ValueError, match=r"hand\.yaml.*flip_pairz"):
        load_keypoint_set(y)
    y.write_text("keypoints: [a, b]\nskeleton: [[a, c]]\n")
    with pytest.raises(ValueError, match=r"hand\.yaml.*'c'"):
        load_keypoint_set(y)
    with pytest.raises(ValueError, match="unknown keypoint set"):
        load_keypoint_set("mpii")


def test_crowdpose_sample_skeleton_is_ignored_with_a_warning():
    path = shared("data/crowdpose_sample/test_crowdpose.json")
    with pytest.warns(UserWarning, match=r"test_crowdpose\.json: .*do not fit its 14 keypoints"):
        ann = load_annotations(path)
    assert ann.keypoints is CROWDPOSE and ann.num_joints == 14
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ExLPose's 0-based skeleton fits: no warning
        assert load_annotations(shared("data/exlpose_sample/test_exlpose.json")).keypoints is CROWDPOSE


def test_custom_keypoint_json_sets_the_number_of_joints(tmp_path):
    names = ["head", "left_hand", "right_hand", "left_foot", "right_foot"]
    people = [[20, 20, 2, 10, 50, 2, 40, 50, 1, 15, 90, 2, 35, 90, 0], [100, 30, 2] + [0, 0, 0] * 4]
    path = _write_dataset(tmp_path, names, people, skeleton=[[1, 2], [1, 3]])
    ds = KeypointDataset(path, transform=TransformConfig(input_size=128))
    assert ds.num_joints == 5 and ds.keypoints.flip_index == (0, 2, 1, 4, 3)
    assert ds.keypoints.skeleton == ((0, 1), (0, 2))  # 1-based in COCO files
    s = ds[0]
    assert s["heatmaps"][0].shape == (5, 32, 32) and s["heatmaps"][1].shape == (5, 64, 64)
    assert s["joints"][0].shape == (30, 5, 2)
    bad = _write_dataset(tmp_path, names, people, skeleton=[[1, 9]])
    with pytest.raises(ValueError, match=r"ann\.json.*do not fit its 5 keypoints"):
        load_annotations(bad)
    with pytest.raises(ValueError, match="has 5 keypoints, the keypoint set 'coco' has 17"):
        load_annotations(path, keypoints="coco")


# -- validation -------------------------------------------------------------------------------------


def _coco_like(tmp_path: Path) -> dict:
    kp = [10.0, 20.0, 2] * 17
    return {
        "images": [{"id": 1, "file_name": "x.jpg", "width": 64, "height": 48}],
        "annotations": [
            {"id": 11, "image_id": 1, "category_id": 1, "iscrowd": 0, "keypoints": list(kp)},
            {"id": 12, "image_id": 1, "category_id": 1, "iscrowd": 0, "keypoints": list(kp)},
        ],
        "categories": [{"id": 1, "name": "person", "keypoints": list(COCO.names)}],
    }


@pytest.mark.parametrize(
    "break_it, message",
    [
        (lambda d: d.pop("annotations"), "missing 'annotations' list"),
        (lambda d: d["annotations"][1].pop("keypoints"), "annotation 12 has no 'keypoints'"),
        (lambda d: d["annotations"][1].pop("image_id"), "annotation 12 has no 'image_id'"),
        (lambda d: d["annotations"][1].__setitem__("keypoints", [1.0] * 42), "annotation 12 has 42 keypoint values"),
        (lambda d: d["annotations"][1]["keypoints"].__setitem__(4, math.nan), "annotation 12 has NaN"),
        (lambda d: d["annotations"][1]["keypoints"].__setitem__(5, 7), "annotation 12 has visibility flags"),
        (lambda d: d["annotations"][1].__setitem__("image_id", 5), "annotation 12 refers to image 5"),
        (lambda d: d["annotations"][1].__setitem__("id", 11), "annotation id 11 appears twice"),
        (lambda d: d["images"][0].pop("height"), "image 1 has no 'height'"),
        (lambda d: d["annotations"][1].__setitem__("segmentation", [[1, 2, 3]]), "annotation 12 has an invalid seg"),
        (lambda d: d["categories"][0].pop("keypoints"), "no category has a 'keypoints' list"),
        (lambda d: d["annotations"][0].__setitem__("segmentation", {"counts": "x", "size": [9, 9]}), "has an RLE of"),
        (lambda d: d["annotations"][0].__setitem__("iscrowd", 1), "crowd region without a segmentation"),
    ],
)
def test_malformed_json_is_rejected_naming_file_and_annotation(tmp_path, break_it, message):
    data = _coco_like(tmp_path)
    load_annotations(_dump(tmp_path, data))  # the intact file loads
    break_it(data)
    path = _dump(tmp_path, data)
    with pytest.raises(ValueError) as e:
        load_annotations(path)
    assert str(path) in str(e.value) and message in str(e.value)


def _dump(tmp: Path, data: dict) -> Path:
    p = tmp / "broken.json"
    p.write_text(json.dumps(data))  # json writes NaN literally, as some exporters do
    return p


def test_unreadable_files_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_annotations(tmp_path / "nope.json")
    (tmp_path / "t.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"t\.json: not valid JSON"):
        load_annotations(tmp_path / "t.json")
    ann = load_annotations(_dump(tmp_path, _coco_like(tmp_path)))
    with pytest.raises(FileNotFoundError, match=r"x\.jpg: no such file"):
        ann.read_image(1)
    (tmp_path / "x.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(ValueError, match=r"x\.jpg: not a readable image"):
        KeypointDataset(ann)[0]


# -- real samples ---------------------------------------------------------------------------------


def test_masks_people_and_joints_equal_the_original():
    ref = torch.load(shared("ref/mask_cases.pt"), weights_only=True)["images"]
    files = {
        "coco_minicoco_sample/train2017": shared(MINI_TRAIN),
        "coco_minicoco_sample/val2017": shared(MINI_VAL),
        "coco_sample": shared("data/coco_sample/test_coco.json"),
    }
    anns = {k: load_annotations(v) for k, v in files.items()}
    train_ids = {k: set(KeypointDataset(a, transform=None).image_ids) for k, a in anns.items()}
    assert len(ref) == 29
    for case in ref:
        ann, iid = anns[case["split"]], case["image_id"]
        h, w = case["height"], case["width"]
        expected = np.unpackbits(case["mask_packed"].numpy())[: h * w].reshape(h, w).astype(bool)
        np.testing.assert_array_equal(ann.mask(iid), expected, err_msg=str(iid))
        assert [a["id"] for a in ann.annotations(iid)] == case["ann_ids"]
        assert [a["id"] for a in ann.people(iid)] == case["kept_ann_ids"]
        np.testing.assert_array_equal(ann.joints(iid), case["joints"].numpy())
        assert (iid in train_ids[case["split"]]) == case["in_training_ids"]


def test_images_without_annotations_are_dropped_unless_kept():
    assert 256518 not in KeypointDataset(shared(MINI_VAL), transform=None).image_ids
    kept = KeypointDataset(shared(MINI_VAL), transform=None, keep_empty=True)
    assert 256518 in kept.image_ids and len(kept) == 13
    rec = kept.load(kept.image_ids.index(256518))
    assert rec["joints"].shape == (0, 17, 3) and rec["mask"].all()


def test_crowd_region_of_34246_is_masked_at_both_resolutions():
    ds = KeypointDataset(shared(MINI_TRAIN), transform=TransformConfig(input_size=256))
    ann, i = ds.annotations, ds.image_ids.index(34246)
    crowd = _crowd_region(ann, 34246)
    ignored = ~ann.mask(34246)
    assert crowd.sum() > 500 and ignored[crowd].all()
    rec = ds.load(i)
    for seed in range(4):
        for cfg in (TransformConfig.no_augmentation(), TransformConfig()):
            t = TrainTransform(cfg, ds.keypoints.flip_index)
            out = t(rec["image"], rec["mask"], rec["joints"], np.random.default_rng(seed))
            p = out["params"]
            for stride, mask in zip(cfg.strides, out["masks"]):
                res = 256 // stride
                m = affine_matrix(p["center"], p["size"], 256, p["rotation"], p["flip"]) / stride
                cover = cv2.warpAffine(crowd.astype(np.float32), m, (res, res), flags=cv2.INTER_LINEAR)
                inside = cover > 0.6
                assert mask[inside].sum() == 0
                if cfg.max_scale == 1.0:  # without augmentation the crowd region is in view
                    assert inside.sum() >= 1
                # away from ignored regions, the in-image area stays counted
                away = cv2.warpAffine(ignored.astype(np.float32), m, (res, res), flags=cv2.INTER_LINEAR) < 0.4
                in_image = cv2.warpAffine(np.ones(crowd.shape, np.float32), m, (res, res)) > 0.6
                assert mask[in_image & away].min() == 1.0


def test_every_visible_joint_is_a_peak_at_its_transformed_position():
    ds = KeypointDataset(shared(MINI_TRAIN), transform=TransformConfig(input_size=256))
    t = ds.transform
    checked = 0
    for i in range(len(ds)):
        rec = ds.load(i)
        for seed in range(3):
            out = t(rec["image"], rec["mask"], rec["joints"], np.random.default_rng(seed + 10 * i))
            p = out["params"]
            joints = rec["joints"][:, ds.keypoints.flip_index] if p["flip"] else rec["joints"]
            m_in = affine_matrix(p["center"], p["size"], 256, p["rotation"], p["flip"])
            for stride, hm, jo in zip((4, 2), out["heatmaps"], out["joints_out"]):
                res = 256 // stride
                xy = apply_affine(joints[..., :2], m_in) / stride
                np.testing.assert_allclose(jo[..., :2], xy, atol=1e-9)
                vis = joints[..., 2] > 0
                tx, ty = np.trunc(xy[..., 0]), np.trunc(xy[..., 1])
                inside = vis & (tx >= 0) & (ty >= 0) & (tx < res) & (ty < res)
                pk = np.nonzero(inside)
                assert (hm[pk[1], ty[inside].astype(int), tx[inside].astype(int)] == 1.0).all()
                checked += int(inside.sum())
    assert checked > 500


def test_image_and_joints_stay_aligned_under_augmentation():
    """A bright dot at a joint ends up where the transformed joint is, flips and rotations included."""
    img = np.zeros((300, 420, 3), np.uint8)
    pt = (260.0, 110.0)
    cv2.circle(img, (260, 110), 4, (255, 255, 255), -1)
    joints = np.zeros((1, 17, 3))
    joints[0, 0] = (*pt, 2)  # the nose: its own mirror image
    t = TrainTransform(TransformConfig(input_size=256, normalize=False, max_scale=1.0), COCO.flip_index)
    flips = set()
    for seed in range(12):
        out = t(img, None, joints, np.random.default_rng(seed))
        flips.add(out["params"]["flip"])
        gray = out["image"][0].astype(float)
        if gray.sum() == 0:
            continue
        ys, xs = np.nonzero(gray > 0)
        centroid = np.array([(xs * gray[ys, xs]).sum(), (ys * gray[ys, xs]).sum()]) / gray[ys, xs].sum()
        for stride, jo in zip((4, 2), out["joints_out"]):
            assert np.abs(jo[0, 0, :2] * stride - centroid).max() < 0.6, (seed, stride)
    assert flips == {True, False}


def test_flip_swaps_left_and_right():
    ds = KeypointDataset(shared(MINI_TRAIN), transform=TransformConfig(input_size=256))
    rec = ds.load(ds.image_ids.index(444294))  # 7 people with both shoulders labelled
    t = ds.transform
    h, w = rec["image"].shape[:2]
    p = {"center": (w / 2 + 7, h / 2 - 5), "size": max(h, w) * 1.1, "rotation": 12.0}
    plain = t(rec["image"], rec["mask"], rec["joints"], None, params={**p, "flip": False})
    flipped = t(rec["image"], rec["mask"], rec["joints"], None, params={**p, "flip": True})
    fi = list(COCO.flip_index)
    assert fi[5] == 6 and fi[0] == 0
    # The image is mirrored (OpenCV's fixed-point sampling may round a few pixels one level apart).
    diff = np.abs(flipped["image"] - plain["image"][:, :, ::-1])
    assert diff.max() <= 1.01 / 255 / 0.224 and (diff > 1e-6).mean() < 1e-3
    for stride, a, b in zip((4, 2), plain["joints_out"], flipped["joints_out"]):
        res = 256 // stride
        # channel k of the flipped sample is the mirror of channel flip_index[k] of the plain one
        np.testing.assert_allclose(b[:, :, 0], res - 1 / stride - a[:, fi, 0], atol=1e-9)
        np.testing.assert_allclose(b[:, :, 1], a[:, fi, 1], atol=1e-9)
        np.testing.assert_array_equal(b[:, :, 2], a[:, fi, 2])
    # A person facing the camera keeps its left shoulder on the image's right after the flip.
    a, b = plain["joints_out"][0], flipped["joints_out"][0]
    both = (a[:, 5, 2] > 0) & (a[:, 6, 2] > 0)
    assert both.any()
    np.testing.assert_array_equal(np.sign(a[both, 5, 0] - a[both, 6, 0]), np.sign(b[both, 5, 0] - b[both, 6, 0]))
    # Heatmaps: the left-shoulder peaks of the flipped sample sit on the rows of the plain right-shoulder ones.
    for ha, hb in zip(plain["heatmaps"], flipped["heatmaps"]):
        assert set(np.nonzero(hb[5] == 1)[0]) == set(np.nonzero(ha[6] == 1)[0]) != set()
    # legacy_flip reproduces the original's x -> R - 1 - x at output resolution
    legacy = TrainTransform(TransformConfig(input_size=256, legacy_flip=True), COCO.flip_index)
    lf = legacy(rec["image"], rec["mask"], rec["joints"], None, params={**p, "flip": True})
    for stride, a, b in zip((4, 2), plain["joints_out"], lf["joints_out"]):
        np.testing.assert_allclose(b[:, :, 0], 256 // stride - 1 - a[:, fi, 0], atol=1e-9)


@pytest.mark.parametrize(
    "rel, k, n_images",
    [
        ("data/crowdpose_sample/test_crowdpose.json", 14, 2),
        ("data/posetrack18_sample/annotations/test_posetrack18_val.json", 17, 3),
        ("data/exlpose_sample/test_exlpose.json", 14, 2),
        ("data/ochuman_sample/test_ochuman.json", 17, 3),
        ("data/coco_sample/test_coco.json", 17, 4),
    ],
)
def test_other_datasets_load(rel, k, n_images):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = KeypointDataset(shared(rel), transform=TransformConfig(input_size=192))
    assert ds.num_joints == k and len(ds) == n_images
    for i in range(len(ds)):
        s = ds[i]
        assert s["image"].shape == (3, 192, 192) and torch.isfinite(s["image"]).all()
        assert [h.shape for h in s["heatmaps"]] == [(k, 48, 48), (k, 96, 96)]
        assert [m.shape for m in s["masks"]] == [(48, 48), (96, 96)]
    if "posetrack" in rel:  # ignore regions become part of the mask
        ann = ds.annotations
        assert (~ann.mask(ann.image_ids[0])).sum() > 10000
    if "crowdpose" in rel:  # a person without keypoints and without segmentation: its box is ignored
        ann = ds.annotations
        empty = [a for a in ann.annotations(106848) if a["num_keypoints"] == 0]
        x, y, w, h = (int(round(v)) for v in empty[0]["bbox"])
        m = ann.mask(106848)
        assert not m[y + 1 : y + h - 1, x + 1 : x + w - 1].any() and abs((~m).sum() - w * h) <= w + h + 1


# -- loading ----------------------------------------------------------------------------------------


def test_dataloader_batches_with_one_input_size_per_batch():
    ds = KeypointDataset(shared(MINI_TRAIN))
    sampler = MultiSizeBatchSampler(RandomSampler(ds), 3, [256, 320], seed=0)
    assert len(sampler) == 4
    seen = set()
    for batch in DataLoader(ds, batch_sampler=sampler):
        n, _, s, _ = batch["image"].shape
        seen.add(s)
        assert batch["heatmaps"][0].shape == (n, 17, s // 4, s // 4)
        assert batch["heatmaps"][1].shape == (n, 17, s // 2, s // 2)
        assert batch["masks"][0].shape == (n, s // 4, s // 4)
        assert batch["joints"][0].shape == (n, 30, 17, 2) and batch["joints"][0].dtype == torch.int64
    assert seen == {256, 320}
    with pytest.raises(ValueError, match="multiple of the strides"):
        MultiSizeBatchSampler(4, 2, [250])


def test_samples_are_reproducible_and_normalised():
    ds = KeypointDataset(shared(MINI_TRAIN))
    torch.manual_seed(5)
    a = ds[2]
    torch.manual_seed(5)
    b = ds[2]
    c = ds[2]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["heatmaps"][1], b["heatmaps"][1])
    assert not torch.equal(a["image"], c["image"])
    raw = ds.load(2)["image"]
    plain = KeypointDataset(shared(MINI_TRAIN), transform=TransformConfig.no_augmentation(normalize=False))[2]
    norm = KeypointDataset(shared(MINI_TRAIN), transform=TransformConfig.no_augmentation())[2]
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    expected = (plain["image"].float() / 255 - mean[:, None, None]) / std[:, None, None]
    assert torch.equal(norm["image"], expected)  # the original's formula (ToTensor + Normalize), bit for bit
    assert plain["image"].dtype == torch.uint8 and raw.dtype == np.uint8


def test_network_input_normalises_uint8_batches_to_the_datasets_own_bits():
    """The trainer sends uint8 batches and normalises them with network_input: the network must
    see exactly what the dataset's float path gives."""
    from litepose.normalization import Normalization, network_input, normalize

    plain = KeypointDataset(shared(MINI_TRAIN), transform=TransformConfig(normalize=False))
    norm = KeypointDataset(shared(MINI_TRAIN), transform=TransformConfig())
    u8 = torch.stack([plain[(i, None, 40 + i)]["image"] for i in range(3)])
    ref = torch.stack([norm[(i, None, 40 + i)]["image"] for i in range(3)])
    assert u8.dtype == torch.uint8
    x = network_input(u8)
    assert x.dtype == torch.float32 and x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x, ref)
    assert torch.equal(network_input(ref), ref) and network_input(ref).is_contiguous(memory_format=torch.channels_last)
    other = Normalization((0.5, 0.5, 0.5), (0.25, 0.5, 1.0))
    expected = (u8.float() / 255 - 0.5) / torch.tensor([0.25, 0.5, 1.0]).view(1, 3, 1, 1)
    assert torch.equal(network_input(u8, other), expected)
    assert np.array_equal(normalize(u8.numpy(), other), expected.numpy())  # the numpy path: the same bits
    with pytest.raises(TypeError, match="uint8 or floating point"):
        network_input(u8.to(torch.int32))


def test_cached_images_give_the_same_samples_and_stay_read_only():
    ds = KeypointDataset(shared(MINI_TRAIN), transform=TransformConfig())
    fresh = KeypointDataset(shared(MINI_TRAIN), transform=TransformConfig())
    crowd = ds.image_ids.index(34246)  # an image with a crowd region: a real mask is cached
    assert ds.cache_images(max_mb=1024) == len(ds) and ds.cached == len(ds)
    for i in (0, crowd, len(ds) - 1):
        a, b = ds[(i, None, 7)], fresh[(i, None, 7)]
        assert torch.equal(a["image"], b["image"])
        for x, y in zip(a["heatmaps"] + a["masks"] + a["joints"], b["heatmaps"] + b["masks"] + b["joints"]):
            assert torch.equal(x, y)
        rec, ref = ds.load(i), fresh.load(i)
        assert np.array_equal(rec["image"], ref["image"]) and np.array_equal(rec["mask"], ref["mask"])
        assert not rec["image"].flags.writeable and not rec["mask"].flags.writeable
    assert not ds.load(crowd)["mask"].all()
    with pytest.raises(ValueError, match="read-only"):
        ds.load(0)["image"][0, 0, 0] = 1


def test_image_cache_stops_at_its_memory_budget():
    ds = KeypointDataset(shared(MINI_TRAIN), transform=TransformConfig())
    sizes = [3 * ds.annotations.image_info(i)["width"] * ds.annotations.image_info(i)["height"] for i in ds.image_ids]
    budget = (sizes[0] + sizes[1] + sizes[2] // 2) / 2**20  # room for two images and half a third
    assert ds.cache_images(max_mb=budget) == 2
    assert ds.cache_images(max_mb=0) == 2  # already cached images stay; nothing more is added
    assert ds[(5, None, 1)]["image"].shape == (3, 256, 256)  # uncached ones are read from disk


def test_a_crowd_of_40_people_makes_a_sample(tmp_path):
    """The original's loader raised IndexError beyond 30 people; here the 30 most complete are kept."""
    names = ["head", "left_hand", "right_hand"]
    rng = np.random.default_rng(0)
    people = []
    for i in range(40):
        x, y = 25 + 2.5 * i, 30 + (i % 5) * 15
        v = [2, 2, 2] if i % 4 else [2, 0, 0]  # every 4th person has one labelled joint only
        people.append([x, y, v[0], x - 4, y + 10, v[1], x + 4, y + 10, v[2]])
    rng.shuffle(people)
    path = _write_dataset(tmp_path, names, people)
    cfg = TransformConfig.no_augmentation(input_size=160)
    s = KeypointDataset(path, transform=cfg)[0]
    table = s["joints"][0].numpy()
    assert (table[:, :, 1].sum(1) == 3).all()  # 30 rows, all of them complete people
    hm = s["heatmaps"][0].numpy()
    assert (hm[0] == 1.0).sum() >= 35  # everyone's head is drawn (a few may share a pixel)
