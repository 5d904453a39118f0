"""Dataset descriptions: where a :class:`~litepose.data.keypoints.KeypointSet` comes from.

A dataset is described by its keypoint set only (names, skeleton, flip pairs, OKS sigmas,
grouping order); this module reads one from

- a built-in name: ``"coco"`` (17 joints) or ``"crowdpose"`` (14 joints);
- a YAML file (schema below);
- a COCO-format JSON: its keypoint category (``KeypointSet.from_coco_category``: a built-in
  whose names match wins; a category skeleton that does not fit is refused);
- a dict, or a ``KeypointSet`` (returned as is).

YAML schema (``keypoints`` is required, everything else optional)::

    name: hands            # short identifier
    keypoints: [wrist, thumb_1, ...]          # names, in channel order (alias: names)
    skeleton: [[wrist, thumb_1], [0, 5]]      # 0-based indices or names
    flip_pairs: [[left_eye, right_eye]]       # indices or names; or flip_index: [...]
    sigmas: [0.025, ...]   # OKS sigmas, one per keypoint (default 0.072 each)
    grouping_order: [0, 1, ...]               # decoder order, indices or names

Unknown keys are refused (they are usually typos) with a message naming the file.

This is the one resolver of keypoint sets (datasets, ``Predictor(keypoints=...)``, the
commands' ``--keypoints NAME|YAML``); whatever goes wrong is a
:class:`~litepose.data.keypoints.KeypointSetError` (a ``ValueError``) naming the source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .jsonio import read_json, read_yaml
from .keypoints import KeypointSet, KeypointSetError, get_keypoint_set

__all__ = ["load_keypoint_set", "keypoint_set_from_yaml", "keypoint_set_from_coco", "keypoint_category"]

_YAML_KEYS = {"name", "keypoints", "names", "skeleton", "flip_pairs", "flip_index", "sigmas", "grouping_order",
              "keypoint_colors", "limb_colors"}  # fmt: skip


def load_keypoint_set(source: KeypointSet | dict | str | Path) -> KeypointSet:
    """Resolve ``source`` (a KeypointSet, dict, built-in name, ``.yaml``/``.yml`` or ``.json`` path)."""
    if isinstance(source, KeypointSet):
        return source
    if isinstance(source, dict):
        return _from_mapping(source, where="keypoint description")
    if not isinstance(source, str | Path):
        raise TypeError(f"a keypoint set is a KeypointSet, a name, a path or a dict, got {type(source).__name__}")
    text = str(source)
    path = Path(text)
    if path.suffix.lower() in (".yaml", ".yml"):
        return keypoint_set_from_yaml(path)
    if path.suffix.lower() == ".json":
        return keypoint_set_from_coco(path)
    try:
        return get_keypoint_set(text)
    except KeypointSetError:
        raise KeypointSetError(
            f"unknown keypoint set {text!r}: give 'coco', 'crowdpose', a .yaml description or a COCO .json"
        ) from None


def keypoint_set_from_yaml(path: str | Path) -> KeypointSet:
    """Read a keypoint set from a YAML description (schema in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise KeypointSetError(f"keypoint description {path} does not exist")
    try:
        data = read_yaml(path, "keypoint description")
    except ValueError as e:
        raise KeypointSetError(str(e)) from None
    if not isinstance(data, dict):
        raise KeypointSetError(f"{path}: expected a mapping with at least 'keypoints'")
    data.setdefault("name", path.stem)
    return _from_mapping(data, where=str(path))


def keypoint_category(dataset: dict[str, Any], where: str = "annotations") -> dict[str, Any]:
    """The keypoint category of a COCO-format dict (the only one with ``keypoints``, or ``person``)."""
    cats = dataset.get("categories")
    if not isinstance(cats, list):
        raise ValueError(f"{where}: missing 'categories' list")
    kp = [c for c in cats if isinstance(c, dict) and c.get("keypoints")]
    if not kp:
        raise ValueError(f"{where}: no category has a 'keypoints' list")
    if len(kp) > 1:
        person = [c for c in kp if c.get("name") == "person"]
        if len(person) != 1:
            names = [c.get("name") for c in kp]
            raise ValueError(f"{where}: several keypoint categories {names}; keep one per file")
        return person[0]
    return kp[0]


def keypoint_set_from_coco(data: dict[str, Any] | str | Path, *, name: str | None = None) -> KeypointSet:
    """The keypoint set of a COCO-format JSON (path or loaded dict), from its keypoint category."""
    where = "annotations"
    try:
        if not isinstance(data, dict):
            where = str(data)
            path = Path(data)
            data = read_json(path, "annotation file")
            if not isinstance(data, dict):
                raise ValueError(f"{path}: expected a COCO-format object")
        cat = keypoint_category(data, where)
    except (OSError, ValueError) as e:
        raise KeypointSetError(str(e)) from None
    try:
        return KeypointSet.from_coco_category(cat, name=name)
    except ValueError as e:
        raise KeypointSetError(f"{where}: {e}") from None


def _from_mapping(d: dict[str, Any], where: str) -> KeypointSet:
    unknown = set(d) - _YAML_KEYS
    if unknown:
        raise KeypointSetError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_YAML_KEYS)}")
    names = d.get("keypoints", d.get("names"))
    if not isinstance(names, list) or not names:
        raise KeypointSetError(f"{where}: 'keypoints' must be a non-empty list of names")
    names = [str(n) for n in names]
    if len(set(names)) != len(names):
        raise KeypointSetError(f"{where}: keypoint names repeat")
    index = {n: i for i, n in enumerate(names)}

    def idx(v: Any) -> int:
        if isinstance(v, str):
            if v not in index:
                raise KeypointSetError(f"{where}: unknown keypoint name {v!r}")
            return index[v]
        if isinstance(v, bool) or not isinstance(v, int):
            raise KeypointSetError(f"{where}: expected a keypoint index or name, got {v!r}")
        return v

    def pairs(key: str) -> list[list[int]] | None:
        v = d.get(key)
        if v is None:
            return None
        if not isinstance(v, list) or any(not isinstance(e, list | tuple) or len(e) != 2 for e in v):
            raise KeypointSetError(f"{where}: {key!r} must be a list of pairs")
        return [[idx(a), idx(b)] for a, b in v]

    out: dict[str, Any] = {"name": str(d.get("name", "custom")), "names": names}
    out["skeleton"] = pairs("skeleton")
    out["flip_pairs"] = pairs("flip_pairs")
    for key in ("flip_index", "grouping_order"):
        if d.get(key) is not None:
            out[key] = [idx(v) for v in d[key]]
    for key in ("sigmas", "keypoint_colors", "limb_colors"):
        if d.get(key) is not None:
            out[key] = d[key]
    try:
        return KeypointSet.from_dict(out)
    except (ValueError, TypeError) as e:
        raise KeypointSetError(f"{where}: {e}") from None
