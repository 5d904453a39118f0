"""COCO-format keypoint annotation files: load, validate, and read people, masks and images.

This is the one reader of COCO-format keypoint JSON in litepose (training data, evaluation
ground truth, SynthPose output). Stable API::

    ann = load_annotations("person_keypoints_val2017.json", images=None, keypoints=None)
    ann.keypoints        # KeypointSet (from the file's category, or the one given)
    ann.num_joints       # K, follows from the keypoint set
    ann.coco             # the pycocotools.coco.COCO index of the validated file
    ann.dataset          # the validated dict (defaults filled in, see below)
    ann.image_ids        # image ids in file order
    ann.subset(ids)      # the same file, restricted to the images ids (e.g. ann.image_ids[:100])
    ann.image_info(i)    # the image entry (file_name, width, height, ...)
    ann.image_path(i)    # Path of the image file
    ann.read_image(i)    # RGB uint8 (H, W, 3), stored pixels (the annotations' frame); clear error if unreadable
    ann.check_images()   # every image file exists (a FileNotFoundError naming the first missing one)
    ann.annotations(i)   # every annotation of the keypoint category on image i, in file order
    ann.people(i)        # training people: non-crowd, or crowd with keypoints (the original's filter)
    ann.joints(i)        # (P, K, 3) float64 (x, y, v) of ann.people(i), image pixels
    ann.mask(i)          # (H, W) bool, True = counted in the loss, False = ignored

Validation (``ValueError`` naming the file and the annotation / image id): the top-level
``images`` / ``annotations`` / ``categories`` lists; images need ``id``, ``file_name``,
``width``, ``height``; annotations need ``id``, ``image_id`` (of a listed image),
``category_id``, and ``keypoints`` (3K finite numbers, v in {0, 1, 2}; crowd regions may omit
it); ``bbox`` (4) and ``area``, when given, are finite numbers too. Numeric strings (``"12"``)
are not numbers. Optional fields get defaults in ``ann.dataset``: ``iscrowd`` 0, ``num_keypoints`` =
number of joints with v > 0. ``area`` and ``segmentation`` are not needed (CrowdPose,
PoseTrack and ExLPose files have none) and are left as they are.

Ignore mask (``ann.mask``): crowd regions (RLE or polygons), the segmentation of non-crowd
people with ``num_keypoints == 0``, and PoseTrack's ``ignore_regions_x/y`` polygons. A person
without keypoints and without a segmentation is ignored over its ``bbox`` (the original could
not handle such files). On COCO files this equals the original ``CocoKeypoints.get_mask``.

Image folder: ``images`` if given, else the first of the JSON's folder, its parent, and
``images/<split>`` or ``<split>`` beside either (``split`` from ``person_keypoints_<split>.json``)
that holds the first image; file names are relative to it.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .description import keypoint_category, load_keypoint_set
from .jsonio import read_json
from .keypoints import KeypointSet

__all__ = ["KeypointAnnotations", "load_annotations", "find_image_root"]


def load_annotations(
    path: str | Path,
    images: str | Path | None = None,
    *,
    keypoints: KeypointSet | dict | str | Path | None = None,
) -> KeypointAnnotations:
    """Load and validate a COCO-format keypoint file.

    Args:
        path: the JSON file, or a SynthPose folder (``annotations.json`` + ``images/``).
        images: folder the ``file_name`` entries are relative to (found automatically if None).
        keypoints: the keypoint set (anything :func:`~litepose.data.description.load_keypoint_set`
            takes); default: read from the file's keypoint category. Its size must match the file.
    """
    path = Path(path)
    if path.is_dir():  # a SynthPose folder: annotations.json beside images/
        if not (path / "annotations.json").is_file():
            raise FileNotFoundError(
                f"{path} is a folder without annotations.json (a SynthPose folder holds annotations.json and images/)"
            )
        path = path / "annotations.json"
    data = read_json(path, "annotation file")
    return KeypointAnnotations(data, path, images=images, keypoints=keypoints)


def find_image_root(json_path: str | Path, first_file: str | None) -> Path:
    """The folder that ``file_name`` entries of ``json_path`` are relative to (see module docstring)."""
    json_path = Path(json_path)
    here, parent = json_path.parent, json_path.parent.parent
    stem = json_path.stem
    splits = [stem]
    if "_" in stem:
        splits.insert(0, stem.rsplit("_", 1)[1])
    candidates = [here, parent]
    for base in (here, parent):
        for split in splits:
            candidates += [base / "images" / split, base / split]
        candidates.append(base / "images")
    if first_file:
        for c in candidates:
            if (c / first_file).is_file():
                return c
    return here


class KeypointAnnotations:
    """A validated COCO-format keypoint file (see the module docstring for the API)."""

    def __init__(
        self,
        data: dict[str, Any],
        path: str | Path = "annotations",
        *,
        images: str | Path | None = None,
        keypoints: KeypointSet | dict | str | Path | None = None,
    ) -> None:
        self.path = Path(path)
        where = str(self.path)
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected a COCO-format object with images, annotations, categories")
        for key in ("images", "annotations", "categories"):
            if not isinstance(data.get(key), list):
                raise ValueError(f"{where}: missing '{key}' list")
        cat = keypoint_category(data, where)
        if "id" not in cat:
            raise ValueError(f"{where}: the keypoint category has no 'id'")
        self.category_id = cat["id"]
        if keypoints is None:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    ks = KeypointSet.from_coco_category(cat)
                except ValueError as e:
                    raise ValueError(f"{where}: {e}") from None
            for w in caught:  # re-issue naming the file
                warnings.warn(f"{where}: {w.message}", w.category, stacklevel=2)
        else:
            ks = load_keypoint_set(keypoints)
            if len(cat["keypoints"]) != ks.num_joints:
                raise ValueError(
                    f"{where}: the file's category has {len(cat['keypoints'])} keypoints,"
                    f" the keypoint set {ks.name!r} has {ks.num_joints}"
                )
        self.keypoints: KeypointSet = ks
        _validate(data, where, self.category_id, ks.num_joints)
        self.dataset = data

        from pycocotools.coco import COCO

        coco = COCO()
        coco.dataset = data
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
        self.coco = coco
        self.image_ids: list[int] = [im["id"] for im in data["images"]]
        first = data["images"][0]["file_name"] if data["images"] else None
        self.image_root = Path(images) if images is not None else find_image_root(self.path, first)
        if images is not None and not self.image_root.is_dir():
            raise FileNotFoundError(f"image folder {self.image_root} does not exist")

    def __repr__(self) -> str:
        return (
            f"KeypointAnnotations({str(self.path)!r}, images={len(self.image_ids)},"
            f" annotations={len(self.dataset['annotations'])}, keypoints={self.keypoints.name!r})"
        )

    @property
    def num_joints(self) -> int:
        return self.keypoints.num_joints

    @cached_property
    def _by_image(self) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {i: [] for i in self.image_ids}
        for a in self.dataset["annotations"]:
            if a["category_id"] == self.category_id:
                out[a["image_id"]].append(a)
        return out

    def subset(self, image_ids: list[Any]) -> KeypointAnnotations:
        """The annotations of the images ``image_ids`` only, in file order: scoring a subset of a
        val set against this, unscored images do not count as misses."""
        keep = set(image_ids)
        data = dict(self.dataset)
        data["images"] = [im for im in self.dataset["images"] if im["id"] in keep]
        data["annotations"] = [a for a in self.dataset["annotations"] if a["image_id"] in keep]
        return KeypointAnnotations(data, self.path, images=self.image_root, keypoints=self.keypoints)

    def image_info(self, image_id: int) -> dict[str, Any]:
        return self.coco.imgs[image_id]

    def image_path(self, image_id: int) -> Path:
        return self.image_root / self.coco.imgs[image_id]["file_name"]

    def read_image(self, image_id: int) -> np.ndarray:
        """RGB uint8 (H, W, 3) in the stored pixel frame (EXIF orientation ignored), the frame the
        annotations are in (:func:`litepose.media.read_image`); the size must match the image entry."""
        from ..media import read_image

        path = self.image_path(image_id)
        img = read_image(path, frame="stored")
        info = self.coco.imgs[image_id]
        if img.shape[:2] != (info["height"], info["width"]):
            raise ValueError(
                f"image {path} is {img.shape[1]}x{img.shape[0]} but {self.path} says"
                f" {info['width']}x{info['height']} (image id {image_id})"
            )
        return img

    def check_images(self, image_ids: list[Any] | None = None, what: str = "images") -> None:
        """Make sure the image files of ``image_ids`` (default: all) exist, so that a run finds a wrong
        folder before it starts rather than at the first missing image."""
        ids = self.image_ids if image_ids is None else image_ids
        missing = [i for i in ids if not self.image_path(i).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{self.path}: {len(missing)} of its {len(ids)} {what} are missing, e.g. {self.image_path(missing[0])}"
                " (is the image folder right?)"
            )

    def annotations(self, image_id: int) -> list[dict[str, Any]]:
        """All annotations of the keypoint category on ``image_id``, in file order."""
        return self._by_image[image_id]

    def people(self, image_id: int) -> list[dict[str, Any]]:
        """The people kept for training: non-crowd annotations, and crowd ones that have keypoints."""
        return [a for a in self._by_image[image_id] if not a["iscrowd"] or a["num_keypoints"] > 0]

    def joints(self, image_id: int) -> np.ndarray:
        """(P, K, 3) float64 (x, y, v) of :meth:`people`, in image pixels (zeros where none given)."""
        people = self.people(image_id)
        out = np.zeros((len(people), self.num_joints, 3))
        for i, a in enumerate(people):
            if a.get("keypoints"):
                out[i] = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
        return out

    def mask(self, image_id: int) -> np.ndarray:
        """(H, W) bool: True where the loss counts, False over ignored regions (module docstring)."""
        from pycocotools import mask as mask_utils

        info = self.coco.imgs[image_id]
        h, w = int(info["height"]), int(info["width"])
        rles: list[Any] = []
        for a in self._by_image[image_id]:
            if not (a["iscrowd"] or a["num_keypoints"] == 0):
                continue
            seg = a.get("segmentation")
            if isinstance(seg, dict):
                rles.append(seg if isinstance(seg["counts"], str | bytes) else mask_utils.frPyObjects(seg, h, w))
            elif seg and any(len(p) >= 6 for p in seg):
                # Polygons; degenerate ones (< 3 points) have no area and would be read as boxes.
                rles.extend(mask_utils.frPyObjects([p for p in seg if len(p) >= 6], h, w))
            elif not a["iscrowd"] and a.get("bbox") is not None:
                rles.extend(mask_utils.frPyObjects(np.asarray([a["bbox"]], dtype=np.float64), h, w))
        xs, ys = info.get("ignore_regions_x"), info.get("ignore_regions_y")
        if xs and ys:
            polys = [
                [v for xy in zip(px, py) for v in xy] for px, py in zip(xs, ys) if len(px) >= 3 and len(px) == len(py)
            ]
            if polys:
                rles.extend(mask_utils.frPyObjects(polys, h, w))
        if not rles:
            return np.ones((h, w), dtype=bool)
        merged = mask_utils.merge(rles) if len(rles) > 1 else rles[0]
        return mask_utils.decode(merged) == 0


def _validate(data: dict[str, Any], where: str, category_id: Any, k: int) -> None:
    """Check the fields litepose relies on; fill ``iscrowd`` / ``num_keypoints`` defaults in place."""
    seen = _validate_images(data, where)
    ann_ids: set[Any] = set()
    for n, a in enumerate(data["annotations"]):
        if not isinstance(a, dict):
            raise ValueError(f"{where}: annotations[{n}] is not an object")
        aid = a.get("id")
        tag = f"annotation {aid}" if aid is not None else f"annotations[{n}]"
        for key in ("id", "image_id", "category_id"):
            if key not in a:
                raise ValueError(f"{where}: {tag} has no '{key}'")
        if aid in ann_ids:
            raise ValueError(f"{where}: annotation id {aid} appears twice")
        ann_ids.add(aid)
        if a["image_id"] not in seen:
            raise ValueError(f"{where}: {tag} refers to image {a['image_id']!r}, which is not in 'images'")
        if a["category_id"] == category_id:
            _validate_person(a, f"{where}: {tag}", k, seen[a["image_id"]])


def _validate_images(data: dict[str, Any], where: str) -> dict[Any, tuple[int, int]]:
    """Check ``images`` (ids unique, sizes positive integers, file names); each id's (h, w)."""
    seen: dict[Any, tuple[int, int]] = {}
    for n, im in enumerate(data["images"]):
        if not isinstance(im, dict):
            raise ValueError(f"{where}: images[{n}] is not an object")
        iid = im.get("id")
        for key in ("id", "file_name", "width", "height"):
            if key not in im:
                raise ValueError(f"{where}: image {iid if iid is not None else f'#{n}'} has no '{key}'")
        if isinstance(iid, bool) or not isinstance(iid, int | str):
            raise ValueError(f"{where}: image #{n} has an invalid id {iid!r}")
        if iid in seen:
            raise ValueError(f"{where}: image id {iid} appears twice")
        for key in ("width", "height"):
            v = im[key]
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 1 or v != int(v):
                raise ValueError(f"{where}: image {iid} has an invalid {key} {v!r}")
            im[key] = int(v)
        seen[iid] = (im["height"], im["width"])
        if not isinstance(im["file_name"], str) or not im["file_name"]:
            raise ValueError(f"{where}: image {iid} has an invalid file_name {im['file_name']!r}")
    return seen


def _validate_person(a: dict[str, Any], tag: str, k: int, hw: tuple[int, int]) -> None:
    """Check one person annotation (``tag`` names it) of an image of size ``hw``; fill defaults."""
    crowd = a.setdefault("iscrowd", 0)
    if crowd not in (0, 1):
        raise ValueError(f"{tag} has iscrowd {crowd!r} (expected 0 or 1)")
    kps = a.get("keypoints")
    if kps is None and not crowd:
        raise ValueError(f"{tag} has no 'keypoints'")
    if kps is not None:
        if not isinstance(kps, list) or len(kps) != 3 * k:
            got = len(kps) if isinstance(kps, list) else type(kps).__name__
            raise ValueError(f"{tag} has {got} keypoint values, expected {3 * k} ({k} joints x 3)")
        try:
            arr = np.asarray(kps)
        except (TypeError, ValueError):
            arr = np.asarray([None])
        if arr.dtype.kind not in "iuf" or arr.ndim != 1:  # numeric strings ("12") are refused too
            bad = next((v for v in kps if not _is_number(v, finite=False)), None)
            raise ValueError(f"{tag} has non-numeric keypoint values such as {bad!r} (numbers expected)")
        arr = arr.astype(np.float64).reshape(k, 3)
        if not np.isfinite(arr).all():
            raise ValueError(f"{tag} has NaN or infinite keypoint values")
        if not np.isin(arr[:, 2], (0, 1, 2)).all():
            raise ValueError(f"{tag} has visibility flags outside {{0, 1, 2}}")
        a.setdefault("num_keypoints", int((arr[:, 2] > 0).sum()))
    else:
        a.setdefault("num_keypoints", 0)
    nk = a["num_keypoints"]
    if isinstance(nk, bool) or not isinstance(nk, int) or nk < 0:
        raise ValueError(f"{tag} has an invalid num_keypoints {nk!r}")
    bbox = a.get("bbox")
    if bbox is not None and not (isinstance(bbox, list | tuple) and len(bbox) == 4 and all(map(_is_number, bbox))):
        raise ValueError(f"{tag} has an invalid bbox {bbox!r} (4 finite numbers expected)")
    area = a.get("area")
    if area is not None and not (_is_number(area) and area >= 0):
        raise ValueError(f"{tag} has an invalid area {area!r} (a finite number >= 0 expected)")
    seg = a.get("segmentation")
    if seg is not None and not _seg_ok(seg):
        raise ValueError(f"{tag} has an invalid segmentation (polygons or RLE expected)")
    if isinstance(seg, dict) and [int(v) for v in seg["size"]] != list(hw):
        raise ValueError(f"{tag} has an RLE of size {seg['size']} on a {list(hw)} (h, w) image")
    if crowd and not seg:
        raise ValueError(f"{tag} is a crowd region without a segmentation")


def _is_number(v: Any, finite: bool = True) -> bool:
    """An int or float (not a bool, not a numeric string), finite unless ``finite`` is False."""
    return isinstance(v, int | float) and not isinstance(v, bool) and (not finite or math.isfinite(v))


def _seg_ok(seg: Any) -> bool:
    if isinstance(seg, dict):
        return "counts" in seg and isinstance(seg.get("size"), list) and len(seg["size"]) == 2
    if isinstance(seg, list):
        for poly in seg:
            if not isinstance(poly, list) or len(poly) % 2:
                return False
            try:
                if not all(math.isfinite(float(v)) for v in poly):
                    return False
            except (TypeError, ValueError):
                return False
        return True
    return False
