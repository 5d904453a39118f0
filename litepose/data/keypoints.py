"""Keypoint metadata: the one place that says what a keypoint set is.

A :class:`KeypointSet` carries everything that depends on the joints of a dataset:
names, skeleton (0-based edges), flip index, OKS sigmas, the order in which the
associative-embedding decoder groups joints, and drawing colours. Every other part of
litepose (decoder, targets, evaluation, drawing) takes it from here.

Built-ins: ``coco`` (17 joints) and ``crowdpose`` (14 joints). Custom sets come from a
COCO category (``KeypointSet.from_coco_category``), a dict / YAML (``from_dict``), or
plain names (``KeypointSet.generic``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "KeypointSet",
    "KeypointSetError",
    "COCO",
    "CROWDPOSE",
    "get_keypoint_set",
    "keypoint_set_for",
]

Color = tuple[int, int, int]

# Colours (RGB) by body side, used when a set does not give its own.
LEFT: Color = (0, 140, 255)
RIGHT: Color = (255, 120, 0)
CENTRE: Color = (60, 200, 60)


def _side(name: str) -> Color:
    n = name.lower()
    if n.startswith(("left", "l_")) or "_left" in n:
        return LEFT
    if n.startswith(("right", "r_")) or "_right" in n:
        return RIGHT
    return CENTRE


class KeypointSetError(ValueError):
    """A keypoint set cannot be resolved (unknown name, bad description, wrong number of joints).

    The one error type of keypoint-set resolution (:func:`get_keypoint_set`,
    :func:`litepose.data.description.load_keypoint_set`, ``Predictor(keypoints=...)``); a
    ``ValueError``, so the command line reports it as one line with exit code 2.
    """


@dataclass(frozen=True)
class KeypointSet:
    """Metadata of one keypoint layout.

    Attributes:
        name: short identifier (``"coco"``, ``"crowdpose"`` or a custom name).
        names: keypoint names, in channel order.
        skeleton: limbs as 0-based index pairs.
        flip_index: ``flip_index[k]`` = the joint that ``k`` becomes under a horizontal flip.
        sigmas: per-joint OKS sigmas (COCO convention).
        grouping_order: order in which the decoder groups joints (the first joint founds people).
        keypoint_colors / limb_colors: RGB drawing colours.
    """

    name: str
    names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]
    flip_index: tuple[int, ...]
    sigmas: tuple[float, ...]
    grouping_order: tuple[int, ...]
    keypoint_colors: tuple[Color, ...] = field(default=())
    limb_colors: tuple[Color, ...] = field(default=())

    def __post_init__(self) -> None:
        k = len(self.names)
        if k == 0:
            raise ValueError("a keypoint set needs at least one keypoint")
        for what, seq in (("flip_index", self.flip_index), ("sigmas", self.sigmas)):
            if len(seq) != k:
                raise ValueError(f"keypoint set {self.name!r}: {what} has {len(seq)} entries for {k} keypoints")
        if sorted(self.flip_index) != list(range(k)) or any(self.flip_index[self.flip_index[i]] != i for i in range(k)):
            raise ValueError(f"keypoint set {self.name!r}: flip_index {list(self.flip_index)} is not an involution")
        if sorted(self.grouping_order) != list(range(k)):
            raise ValueError(f"keypoint set {self.name!r}: grouping_order must be a permutation of 0..{k - 1}")
        for a, b in self.skeleton:
            if not (0 <= a < k and 0 <= b < k) or a == b:
                raise ValueError(
                    f"keypoint set {self.name!r}: skeleton edge ({a}, {b}) does not fit {k} keypoints (0-based)"
                )
        if any(s <= 0 for s in self.sigmas):
            raise ValueError(f"keypoint set {self.name!r}: OKS sigmas must be positive")
        if not self.keypoint_colors:
            object.__setattr__(self, "keypoint_colors", tuple(_side(n) for n in self.names))
        if not self.limb_colors:
            cols = []
            for a, b in self.skeleton:
                ca, cb = _side(self.names[a]), _side(self.names[b])
                cols.append(ca if ca == cb else CENTRE)
            object.__setattr__(self, "limb_colors", tuple(cols))

    @property
    def num_joints(self) -> int:
        return len(self.names)

    # -- construction -----------------------------------------------------------------------------

    @classmethod
    def generic(cls, num_joints: int, name: str = "custom") -> KeypointSet:
        """A set with no semantics: joints ``kp0..kpN``, no flips, no skeleton, COCO's mean sigma."""
        return cls(
            name=name,
            names=tuple(f"kp{i}" for i in range(num_joints)),
            skeleton=(),
            flip_index=tuple(range(num_joints)),
            sigmas=(0.072,) * num_joints,
            grouping_order=tuple(range(num_joints)),
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KeypointSet:
        """Build from a plain dict (as stored in litepose checkpoints or a dataset YAML).

        Required: ``names``. Optional: ``name``, ``skeleton`` (0-based), ``flip_pairs`` (list of
        [left, right]) or ``flip_index``, ``sigmas``, ``grouping_order``.
        """
        if "names" not in d:
            raise ValueError("keypoint description needs 'names'")
        names = tuple(str(n) for n in d["names"])
        k = len(names)
        if "flip_index" in d and d["flip_index"] is not None:
            flip = tuple(int(i) for i in d["flip_index"])
        else:
            f = list(range(k))
            for a, b in d.get("flip_pairs") or []:
                f[int(a)], f[int(b)] = int(b), int(a)
            flip = tuple(f)
        sig = d.get("sigmas")
        sigmas = tuple(float(s) for s in sig) if sig is not None else (0.072,) * k
        order = d.get("grouping_order")
        grouping = tuple(int(i) for i in order) if order is not None else tuple(range(k))
        kwargs: dict[str, Any] = {}
        if d.get("keypoint_colors"):
            kwargs["keypoint_colors"] = tuple(tuple(int(c) for c in col) for col in d["keypoint_colors"])
        if d.get("limb_colors"):
            kwargs["limb_colors"] = tuple(tuple(int(c) for c in col) for col in d["limb_colors"])
        return cls(
            name=str(d.get("name", "custom")),
            names=names,
            skeleton=tuple((int(a), int(b)) for a, b in d.get("skeleton") or []),
            flip_index=flip,
            sigmas=sigmas,
            grouping_order=grouping,
            **kwargs,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain, ``weights_only``-safe dict (lists of ints/floats/strings)."""
        return {
            "name": self.name,
            "names": list(self.names),
            "skeleton": [list(e) for e in self.skeleton],
            "flip_index": list(self.flip_index),
            "sigmas": list(self.sigmas),
            "grouping_order": list(self.grouping_order),
            "keypoint_colors": [list(c) for c in self.keypoint_colors],
            "limb_colors": [list(c) for c in self.limb_colors],
        }

    @classmethod
    def from_coco_category(
        cls, category: dict[str, Any], *, name: str | None = None, sigmas: list[float] | None = None
    ) -> KeypointSet:
        """Build from a COCO ``categories`` entry with ``keypoints`` (names) and ``skeleton``.

        A built-in set whose names match is returned as is (its skeleton, flips and sigmas are
        authoritative). Otherwise flip pairs are derived from ``left_*``/``right_*`` names and the
        skeleton is read 1-based (COCO's convention) or 0-based if it contains a 0. A skeleton that
        does not fit the keypoint list is refused with a clear error instead of being trusted.
        """
        kp_names = category.get("keypoints")
        if not kp_names:
            raise ValueError(f"category {category.get('name')!r} has no 'keypoints' list")
        names = tuple(str(n) for n in kp_names)
        k = len(names)
        raw = [tuple(int(v) for v in e) for e in category.get("skeleton") or []]
        flat = [v for e in raw for v in e]
        base = 0 if flat and min(flat) == 0 else 1
        bad = [e for e in raw if len(e) != 2 or not all(0 <= v - base < k for v in e)]
        for builtin in (COCO, CROWDPOSE):
            if names == builtin.names:
                if bad:
                    warnings.warn(
                        f"category {category.get('name')!r}: skeleton edges {bad[:3]} do not fit its {k} keypoints;"
                        f" ignored, the built-in {builtin.name!r} skeleton is used",
                        stacklevel=2,
                    )
                return builtin
        if bad:
            raise ValueError(
                f"category {category.get('name')!r}: skeleton edges {bad[:3]} do not fit its {k} keypoints"
            )
        edges = tuple((a - base, b - base) for a, b in raw)
        return cls.from_dict(
            {
                "name": name or str(category.get("name", "custom")),
                "names": names,
                "skeleton": edges,
                "flip_pairs": _flip_pairs_from_names(names),
                "sigmas": sigmas,
            }
        )


def _flip_pairs_from_names(names: tuple[str, ...]) -> list[tuple[int, int]]:
    pairs = []
    index = {n: i for i, n in enumerate(names)}
    for i, n in enumerate(names):
        for a, b in (("left", "right"), ("l_", "r_"), ("Left", "Right")):
            if a in n:
                other = n.replace(a, b)
                if other in index:
                    pairs.append((i, index[other]))
    return pairs


_COCO_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip

# The original decoder's grouping order (HigherHRNet): head, shoulders, hips, then limbs.
_ORIGINAL_ORDER = (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)

COCO = KeypointSet(
    name="coco",
    names=_COCO_NAMES,
    skeleton=(
        (15, 13),
        (13, 11),
        (16, 14),
        (14, 12),
        (11, 12),
        (5, 11),
        (6, 12),
        (5, 6),
        (5, 7),
        (6, 8),
        (7, 9),
        (8, 10),
        (1, 2),
        (0, 1),
        (0, 2),
        (1, 3),
        (2, 4),
        (3, 5),
        (4, 6),
    ),  # fmt: skip
    flip_index=(0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15),
    sigmas=(
        0.026,
        0.025,
        0.025,
        0.035,
        0.035,
        0.079,
        0.079,
        0.072,
        0.072,
        0.062,
        0.062,
        0.107,
        0.107,
        0.087,
        0.087,
        0.089,
        0.089,
    ),  # fmt: skip
    grouping_order=_ORIGINAL_ORDER,
)

CROWDPOSE = KeypointSet(
    name="crowdpose",
    names=(
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
        "head",
        "neck",
    ),  # fmt: skip
    skeleton=(
        (12, 13),
        (13, 0),
        (13, 1),
        (0, 2),
        (2, 4),
        (1, 3),
        (3, 5),
        (0, 6),
        (1, 7),
        (6, 7),
        (6, 8),
        (8, 10),
        (7, 9),
        (9, 11),
    ),  # fmt: skip
    flip_index=(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12, 13),
    sigmas=(0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089, 0.079, 0.079),
    # The original decoder takes the first 14 entries of the COCO order for CrowdPose.
    grouping_order=(0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13),
)

_BUILTIN = {"coco": COCO, "crowdpose": CROWDPOSE}


def get_keypoint_set(name: str) -> KeypointSet:
    """Return a built-in keypoint set by name (``"coco"`` or ``"crowdpose"``, any case).

    Files and dicts go through :func:`litepose.data.description.load_keypoint_set`.
    """
    try:
        return _BUILTIN[name.lower()]
    except KeyError:
        raise KeypointSetError(f"unknown keypoint set {name!r}; built-ins: {sorted(_BUILTIN)}") from None


def keypoint_set_for(num_joints: int) -> KeypointSet:
    """The default set for a number of joints: COCO for 17, CrowdPose for 14, generic otherwise."""
    for ks in _BUILTIN.values():
        if ks.num_joints == num_joints:
            return ks
    return KeypointSet.generic(num_joints)
