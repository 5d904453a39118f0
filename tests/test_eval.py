"""Evaluation: GT self-check, parity with pycocotools / the CrowdPose evaluator, hand-computed CrowdPose case, CLI."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import warnings

import numpy as np
import pytest
from conftest import shared

import litepose
from litepose.cli import main as cli
from litepose.data.keypoints import CROWDPOSE
from litepose.eval import CROWD_INDEX_THRESHOLDS, METRIC_KEYS, evaluate, gt_as_results, load_eval_data

COCO_FILES = {
    "coco_sample": "data/coco_sample/test_coco.json",
    "minicoco_val": "data/coco_minicoco_sample/annotations/person_keypoints_val2017.json",
    "minicoco_train": "data/coco_minicoco_sample/annotations/person_keypoints_train2017.json",
    "ochuman": "data/ochuman_sample/test_ochuman.json",
}
CROWDPOSE_FILE = "data/crowdpose_sample/test_crowdpose.json"


def _load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the CrowdPose sample's misfit category skeleton
        return load_eval_data(path)


def _perturbed(path, seed=0):
    """Ground truth turned into imperfect predictions: jitter, dropped people, false positives, random scores."""
    data = json.loads(path.read_text())
    rng = np.random.default_rng(seed)
    out = []
    for a in data["annotations"]:
        if a.get("iscrowd") or a.get("num_keypoints", 0) == 0 or rng.random() < 0.15:
            continue
        k = np.asarray(a["keypoints"], float).reshape(-1, 3)
        scale = np.sqrt(a["bbox"][2] * a["bbox"][3])
        k[:, :2] += rng.normal(0, rng.uniform(0.005, 0.06) * scale, (len(k), 2))
        k[:, 2] = rng.uniform(0.1, 1, len(k))
        out.append({"image_id": a["image_id"], "category_id": a["category_id"], "keypoints": k.ravel().tolist(),
                    "score": float(rng.uniform(0.05, 1))})  # fmt: skip
        if rng.random() < 0.3:  # a false positive nearby
            fp = k.copy()
            fp[:, :2] += rng.normal(0, 0.5 * scale, 2)
            out.append({"image_id": a["image_id"], "category_id": a["category_id"], "keypoints": fp.ravel().tolist(),
                        "score": float(rng.uniform(0.05, 1))})  # fmt: skip
    return out


def _pycocotools(gt_dict, results, sigmas=None, img_ids=None):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(gt_dict)
        gt.createIndex()
        dt = gt.loadRes(copy.deepcopy(results))
        ev = COCOeval(gt, dt, "keypoints")
        if sigmas is not None:
            ev.params.kpt_oks_sigmas = np.asarray(sigmas)
        if img_ids is not None:
            ev.params.imgIds = img_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


# -- ground truth as results ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["coco_sample", "minicoco_val", "ochuman", "crowdpose"])
def test_gt_as_results_scores_one(name):
    path = shared(CROWDPOSE_FILE if name == "crowdpose" else COCO_FILES[name])
    ann = _load(path)
    m = evaluate(gt_as_results(ann), ann)
    assert m["protocol"] == ("crowdpose" if name == "crowdpose" else "coco")
    assert m["AP"] == 1.0 and m["AR"] == 1.0
    for key in METRIC_KEYS[m["protocol"]]:
        assert m[key] in (1.0, -1.0), key  # -1: no ground truth of that kind (area range / crowd band)
    expected = sum(1 for a in ann.dataset["annotations"] if not a["iscrowd"] and a["num_keypoints"] > 0)
    assert m["num_results"] == expected


def test_subset_scores_only_its_images():
    """``ann.subset(ids)`` (val.max_images, search's --val-images): the other images are not misses."""
    ann = _load(shared(COCO_FILES["minicoco_val"]))
    first = [i for i in ann.image_ids if ann.people(i)][:2]
    sub = ann.subset(first)
    assert sub.image_ids == first and len(ann.image_ids) > 2
    results = [r for r in gt_as_results(ann) if r["image_id"] in set(first)]
    assert evaluate(results, sub)["AP"] == 1.0
    assert evaluate(results, ann)["AR"] < 1.0  # against the whole file, the rest are misses


# -- parity: COCO protocol vs pycocotools ----------------------------------------------------------


@pytest.mark.parametrize("name", list(COCO_FILES))
def test_coco_protocol_equals_pycocotools(name):
    path = shared(COCO_FILES[name])
    results = _perturbed(path, seed=len(name))
    m = evaluate(results, _load(path))
    ref = _pycocotools(json.loads(path.read_text()), results)
    got = [m[k] for k in METRIC_KEYS["coco"]]
    np.testing.assert_allclose(got, ref.stats, rtol=0, atol=1e-12)
    assert 0.1 < m["AP"] < 0.95  # the perturbation is neither trivial nor hopeless


def test_file_without_area_uses_crowdpose_box_area():
    """Under the COCO protocol a missing area is 0.53 * w * h (the CrowdPose toolkit's rule)."""
    path = shared(CROWDPOSE_FILE)
    results = _perturbed(path, seed=3)
    m = evaluate(results, _load(path), "coco")
    gt = json.loads(path.read_text())
    for a in gt["annotations"]:
        a["area"] = 0.53 * a["bbox"][2] * a["bbox"][3]
    ref = _pycocotools(gt, results, sigmas=CROWDPOSE.sigmas)
    np.testing.assert_allclose([m[k] for k in METRIC_KEYS["coco"]], ref.stats, rtol=0, atol=1e-12)


def test_custom_keypoints_use_their_sigmas(tmp_path):
    """A 5-joint custom set: OKS sigmas come from its KeypointSet (0.072 each when the file gives none)."""
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(1, 7):
        images.append({"id": i, "file_name": f"{i}.jpg", "width": 200, "height": 200})
        for _ in range(int(rng.integers(1, 4))):
            x, y = rng.uniform(20, 150, 2)
            kp = np.concatenate([rng.uniform([x, y], [x + 40, y + 60], (5, 2)), np.full((5, 1), 2)], 1)
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1, "iscrowd": 0, "num_keypoints": 5,
                         "keypoints": kp.ravel().tolist(), "bbox": [x, y, 40, 60], "area": 2400.0})  # fmt: skip
    cat = {"id": 1, "name": "hand", "keypoints": ["a", "b", "c", "d", "e"], "skeleton": [[1, 2]]}
    gt = {"images": images, "annotations": anns, "categories": [cat]}
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(gt))
    results = _perturbed(path, seed=5)
    ann = load_eval_data(path)
    assert ann.num_joints == 5
    m = evaluate(results, ann)
    ref = _pycocotools(gt, results, sigmas=ann.keypoints.sigmas)
    np.testing.assert_allclose([m[k] for k in METRIC_KEYS["coco"]], ref.stats, rtol=0, atol=1e-12)
    assert evaluate(gt_as_results(ann), ann)["AP"] == 1.0


def test_string_ids_are_renumbered_for_the_evaluator(tmp_path):
    """COCO-format files may use string ids; the scores equal those of the same file with int ids."""
    path = shared(COCO_FILES["coco_sample"])
    gt = json.loads(path.read_text())
    results = _perturbed(path, seed=2)
    named = copy.deepcopy(gt)
    for im in named["images"]:
        im["id"] = f"img{im['id']:012d}"  # same sorted order as the ints
    for a in named["annotations"]:
        a["image_id"] = f"img{a['image_id']:012d}"
        a["id"] = f"ann{a['id']}"
    (tmp_path / "named.json").write_text(json.dumps(named))
    named_results = [dict(r, image_id=f"img{r['image_id']:012d}") for r in results]
    m = evaluate(named_results, tmp_path / "named.json", output=tmp_path)
    ref = evaluate(results, path)
    assert [m[k] for k in METRIC_KEYS["coco"]] == [ref[k] for k in METRIC_KEYS["coco"]]


# -- CrowdPose protocol ----------------------------------------------------------------------------


def _crowdpose_reference(gt_dict, results):
    """The CrowdPose toolkit's protocol on pycocotools (independent of hotcoco): box area x 0.53,
    CrowdPose sigmas, 20 detections, bands = mean precision over the band's images."""
    gt = copy.deepcopy(gt_dict)
    for a in gt["annotations"]:
        a["area"] = 0.53 * a["bbox"][2] * a["bbox"][3]
    ev = _pycocotools(gt, results, sigmas=CROWDPOSE.sigmas)
    s = ev.stats
    stats = [s[0], s[1], s[2], s[5], s[6], s[7]]
    first, second = CROWD_INDEX_THRESHOLDS
    bands = ([], [], [])
    for im in gt["images"]:
        ci = im["crowdIndex"]
        bands[0 if ci < first else 1 if ci < second else 2].append(im["id"])
    for ids in bands:
        if not ids:
            stats.append(-1.0)
            continue
        sub = _pycocotools(gt, results, sigmas=CROWDPOSE.sigmas, img_ids=ids)
        stats.append(round(float(np.mean(sub.eval["precision"][:, :, :, 0, :])), 4))
    return stats


def test_crowdpose_protocol_equals_evaluators():
    import xthotcoco

    path = shared(CROWDPOSE_FILE)
    results = _perturbed(path, seed=1)
    m = evaluate(results, _load(path))
    assert m["protocol"] == "crowdpose"
    got = [m[k] for k in METRIC_KEYS["crowdpose"]]
    gt = json.loads(path.read_text())
    # xthotcoco called directly (its empty bands are wrong: it reads an empty image list as "all").
    ev = xthotcoco.COCOeval(xthotcoco.COCO(ann_data=gt), results, "keypoints_crowd", CROWDPOSE.sigmas, use_area=False)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev.run()
    np.testing.assert_allclose(got[:6] + got[7:8], list(ev.stats[:6]) + [ev.stats[7]], rtol=0, atol=1e-12)
    # pycocotools configured as the CrowdPose toolkit, an independent implementation.
    np.testing.assert_allclose(got, _crowdpose_reference(gt, results), rtol=0, atol=1e-12)
    assert m["AP_easy"] == -1.0 and m["AP_hard"] == -1.0  # both sample images are medium (0.33, 0.39)


def _three_band_case():
    """Three images, one per crowd band, whose metrics are worked out by hand below."""
    rng = np.random.default_rng(0)

    def person(x, y):
        pts = np.stack([x + rng.uniform(0, 50, 14), y + rng.uniform(0, 100, 14)], 1)
        kp = np.concatenate([pts, np.full((14, 1), 2.0)], 1)
        return kp, [float(pts[:, 0].min()), float(pts[:, 1].min()), float(np.ptp(pts[:, 0])), float(np.ptp(pts[:, 1]))]

    # crowdIndex 0.15 is easy and 0.8 is hard under the toolkit's thresholds (0.2, 0.8).
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 480, "crowdIndex": ci}
              for i, ci in ((1, 0.15), (2, 0.5), (3, 0.8))]  # fmt: skip
    anns, res = [], []

    def gt(i, kp, bb):
        anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1, "iscrowd": 0, "num_keypoints": 12,
                     "keypoints": kp.ravel().tolist(), "bbox": bb})  # fmt: skip

    def dt(i, kp, score):
        res.append({"image_id": i, "category_id": 1, "keypoints": kp.ravel().tolist(), "score": score})

    k, b = person(50, 50)  # easy: one person, found exactly
    gt(1, k, b)
    dt(1, k, 0.95)
    k, b = person(50, 50)  # medium: one exact, one with 4 of 14 joints far off (OKS = 10/14 = 0.714)
    gt(2, k, b)
    dt(2, k, 0.9)
    k, b = person(300, 100)
    gt(2, k, b)
    off = k.copy()
    off[:4, :2] += 500
    dt(2, off, 0.8)
    k, b = person(50, 50)  # hard: a false positive scored above the exact detection
    gt(3, k, b)
    dt(3, k + [1000, 1000, 0], 0.85)
    dt(3, k, 0.5)
    cat = {"id": 1, "name": "person", "keypoints": list(CROWDPOSE.names), "skeleton": []}
    return {"images": images, "annotations": anns, "categories": [cat]}, res


def test_crowdpose_hand_computed_three_bands(tmp_path):
    gt, res = _three_band_case()
    path = tmp_path / "three.json"
    path.write_text(json.dumps(gt))
    m = evaluate(res, path)
    # Pooled, detections by score: TP(easy) TP(med) FP(hard) [med OKS .714] TP(hard); 4 people.
    # IoU thresholds .50-.70 (5): TP TP FP TP TP -> precision 1 up to recall .5, .8 beyond: AP = (51 + 50*.8)/101
    # thresholds .75-.95 (5): TP TP FP FP TP -> 1 up to recall .5, .6 up to .75, 0 beyond: AP = (51 + 25*.6)/101
    ap_lo, ap_hi = 91 / 101, 66 / 101
    assert m["AP"] == pytest.approx((ap_lo + ap_hi) / 2, abs=1e-12)
    assert m["AP50"] == pytest.approx(ap_lo, abs=1e-12)
    assert m["AP75"] == pytest.approx(ap_hi, abs=1e-12)
    assert m["AR"] == pytest.approx(0.875, abs=1e-12)  # recall 1 at 5 thresholds, .75 at 5
    assert m["AR50"] == pytest.approx(1.0, abs=1e-12)
    assert m["AR75"] == pytest.approx(0.75, abs=1e-12)
    assert m["AP_easy"] == 1.0
    assert m["AP_medium"] == round((5 * 1 + 5 * 51 / 101) / 10, 4)  # 0.7525: the second person only below .75
    assert m["AP_hard"] == 0.5  # precision .5 at every recall, every threshold
    assert m["AP"] == pytest.approx(_crowdpose_reference(gt, res)[0], abs=1e-12)


def test_crowdpose_without_crowd_index_has_no_bands(tmp_path):
    gt, res = _three_band_case()
    for im in gt["images"]:
        del im["crowdIndex"]
    path = tmp_path / "noindex.json"
    path.write_text(json.dumps(gt))
    m = evaluate(res, path, "crowdpose")
    assert (m["AP_easy"], m["AP_medium"], m["AP_hard"]) == (-1.0, -1.0, -1.0)
    assert m["AP"] == pytest.approx((91 / 101 + 66 / 101) / 2, abs=1e-12)


# -- predictor path, outputs, errors ---------------------------------------------------------------


def test_predictor_runs_on_every_image_and_writes_outputs(tmp_path):
    import cv2

    path = shared(COCO_FILES["coco_sample"])
    ann = _load(path)
    by_shape = {}
    for i in ann.image_ids:
        info = ann.image_info(i)
        by_shape[(info["height"], info["width"])] = i
    assert len(by_shape) == len(ann.image_ids)  # the fake predictor finds the image by its size
    seen = []

    def predictor(img):
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        image_id = by_shape[img.shape[:2]]
        bgr = cv2.imread(str(ann.image_path(image_id)))
        np.testing.assert_array_equal(img, bgr[..., ::-1])  # RGB
        seen.append(image_id)
        people = [a for a in ann.annotations(image_id) if not a["iscrowd"] and a["num_keypoints"] > 0]
        return [{"keypoints": np.asarray(a["keypoints"], float).reshape(-1, 3), "score": 0.9, "box": a["bbox"]}
                for a in people]  # fmt: skip

    m = litepose.evaluate(predictor, path, output=tmp_path / "out", progress=False)
    assert sorted(seen) == sorted(ann.image_ids)
    assert m["AP"] == 1.0
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(saved) == m["num_results"] and {"image_id", "category_id", "keypoints", "score"} <= set(saved[0])
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["AP"] == 1.0
    assert evaluate(tmp_path / "out" / "results.json", path)["AP"] == 1.0


def test_bad_results_are_refused_with_a_clear_message(tmp_path):
    path = shared(COCO_FILES["coco_sample"])
    good = gt_as_results(path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([dict(good[0], image_id=123456789)]))
    with pytest.raises(ValueError, match=r"bad\.json.*image 123456789"):
        evaluate(bad, path)
    with pytest.raises(ValueError, match="51 keypoint values, expected 51|50 keypoint values, expected 51"):
        evaluate([dict(good[0], keypoints=good[0]["keypoints"][:-1])], path)
    with pytest.raises(ValueError, match="NaN"):
        evaluate([dict(good[0], score=float("nan"))], path)
    with pytest.raises(ValueError, match="unknown protocol"):
        evaluate(good, path, "mpii")
    with pytest.raises(FileNotFoundError, match="annotations.json"):
        evaluate(good, tmp_path)
    assert evaluate([], path)["AP"] == 0.0  # no predictions: nothing found


# -- CLI -------------------------------------------------------------------------------------------


def test_cli_val_crowdpose_gt_and_saved_results(tmp_path, capsys):
    path = shared(CROWDPOSE_FILE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli(["val", "--data", str(path), "--gt-as-results", "--output", str(tmp_path / "gt")]) == 0
    out = capsys.readouterr().out
    assert "crowdpose keypoint protocol" in out
    lines = {ln.split()[0]: ln.split()[-1] for ln in out.splitlines() if ln.strip()}
    assert lines["AP"] == "1.000" and lines["AP_medium"] == "1.000" and lines["AP_easy"] == "n/a"
    assert json.loads((tmp_path / "gt" / "metrics.json").read_text())["AP"] == 1.0
    assert not (tmp_path / "gt" / "results.json").exists()  # no inference ran

    results = _perturbed(path, seed=1)
    saved = tmp_path / "R.json"
    saved.write_text(json.dumps(results))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli(["val", "--data", str(path), "--results", str(saved)]) == 0
    out = capsys.readouterr().out
    lines = {ln.split()[0]: ln.split()[-1] for ln in out.splitlines() if ln.strip()}
    assert lines["AP"] == f"{evaluate(results, _load(path))['AP']:.3f}" != "1.000"


def test_cli_val_user_errors(tmp_path, capsys):
    assert cli(["val", "--data", str(tmp_path / "missing.json"), "--gt-as-results"]) == 2
    assert "missing.json" in capsys.readouterr().err


def test_cli_val_weights_runs_the_predictor(tmp_path, capsys):
    """--weights: litepose.Predictor on every image; results.json is written and scores the same when reloaded."""
    data = shared(COCO_FILES["coco_sample"])
    weights = shared("ref/model_XS_17.pth")  # random weights: the chain runs, the AP is near 0
    out = tmp_path / "val"
    assert cli(["val", "--data", str(data), "--weights", str(weights), "--no-flip", "--output", str(out)]) == 0
    assert "coco keypoint protocol: 4 images" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_results"] == len(results) > 0
    assert {r["image_id"] for r in results} <= set(_load(data).image_ids)
    assert evaluate(out / "results.json", data)["AP"] == metrics["AP"]
    # a 17-joint model on a 14-joint dataset: one clear line, exit 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli(["val", "--data", str(shared(CROWDPOSE_FILE)), "--weights", str(weights), "--no-flip"]) == 2
    assert "14 joints" in capsys.readouterr().err
