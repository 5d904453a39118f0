"""Training configuration: typed sections read from YAML, with ``key=value`` overrides.

A config is a tree of dataclasses (no global mutable state): ``TrainConfig.load(path,
overrides)`` reads the YAML, applies dotted overrides such as ``train.epochs=1`` (values
parsed as YAML), and rejects unknown keys with a message that names them. Every value, from
the YAML or an override, is converted to its field's annotated type (``int``, ``float``,
``bool``, ``str``, ``X | None``, ``list[X]``, ``dict[str, X]``): ``train.lr=4e-3`` (a string
for YAML 1.1) becomes the float 0.004, and a value that does not convert (``train.epochs=ten``)
is a ``ValueError`` naming the key and the expected type. Values are then checked against their
range (:meth:`TrainConfig.check`: ``train.epochs`` at least 1, ``data.sigma`` positive, ...), so
that a config that would train nothing or nonsense is refused before training starts.
``to_dict`` gives a plain dict that goes into checkpoints and ``OUT/config.yaml``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..data.jsonio import read_yaml
from ..data.transforms import Augmentation, TransformConfig
from ..models.spec import is_supernet

__all__ = [
    "TrainConfig",
    "ModelCfg",
    "DataCfg",
    "Augmentation",
    "OptimCfg",
    "LossCfg",
    "SupernetCfg",
    "ValCfg",
    "parse_overrides",
    "SYNTHPOSE_RECIPE",
    "convert_value",
    "RESUME_CHANGEABLE",
    "resume_differences",
]

#: How LitePose-XS learns SynthPose quickly on a CPU (docs/training.md, "The SynthPose recipe"):
#: the sections that differ from the original COCO recipe. ``litepose demo`` and
#: ``configs/synthpose_xs.yaml`` use it (a test keeps the YAML equal to it).
SYNTHPOSE_RECIPE: dict[str, dict[str, Any]] = {
    "model": {"arch": "litepose-xs", "input_size": 128, "head_init_std": 0.001},
    "train": {
        "batch_size": 8,
        "optimizer": "adamw",
        "lr": 4e-3,
        "weight_decay": 1e-4,
        "schedule": "cosine",
        "warmup_steps": 30,
        "lr_steps": [],
    },
    "loss": {"push_type": "max", "push_factor": 0.01, "pull_factor": 0.01},
    "val": {"flip_test": False},
}


#: ``train.optimizer``: Adam (the original: L2 weight decay) or AdamW (decoupled weight decay).
OPTIMIZERS = ("adam", "adamw")
#: ``train.schedule``: the original's steps, or cosine (:mod:`litepose.engine.schedule`).
SCHEDULES = ("step", "cosine")
#: The keys of ``data.synthpose``.
SYNTHPOSE_KEYS = ("train_images", "val_images", "train_seed", "val_seed")


@dataclass
class ModelCfg:
    arch: str = "litepose-xs"  # preset, architecture JSON, or litepose-super
    input_size: int | None = None  # default: the architecture's
    pretrained: str | None = None  # checkpoint; backbone loaded, head (deconv*, final*) skipped
    pretrained_head: bool = False  # also load the pretrained head (a subnet transferred from a supernet)
    sync_bn: bool = False  # SyncBatchNorm under DDP (CUDA)
    head_init_std: float | None = None  # N(0, std^2) output-layer init (e.g. 0.001); None: PyTorch's (the original)


@dataclass
class DataCfg:
    train: str = ""  # COCO-format JSON or SynthPose folder
    train_images: str | None = None
    val: str | None = None
    val_images: str | None = None
    keypoints: str | None = None  # coco / crowdpose / YAML; default: from the annotations
    # Generate SynthPose into data.train / data.val when they do not exist yet, e.g.
    # {train_images: 3000, val_images: 500, train_seed: 0, val_seed: 1}; None: never generate.
    synthpose: dict[str, int] | None = None
    max_people: int = 30
    sigma: float = 2.0
    # loader worker processes; None (auto): 0 (load in the training process) on a CPU with at most
    # 2 cores, where a worker process would take its time from the compute threads, else 2
    workers: int | None = None
    # decoded training images kept in memory, up to this many MB (0: off): no JPEG decoding after
    # the first epoch (about 245 kB per 320x256 SynthPose image)
    cache_mb: float = 0.0
    # The augmentation has its own section, ``augment`` (litepose.data.transforms.Augmentation).


#: Keys that once named the augmentation and are refused now, with the key that replaced them.
RENAMED = {
    "data.rotation": "augment.max_rotation",
    "data.scale_min": "augment.min_scale",
    "data.scale_max": "augment.max_scale",
    "data.translate": "augment.max_translate",
    "data.flip": "augment.flip_prob",
}


@dataclass
class OptimCfg:
    epochs: int = 500
    batch_size: int = 16  # per process
    optimizer: str = "adam"  # "adam" (the original: L2 weight decay) or "adamw" (decoupled weight decay)
    lr: float = 4e-3
    weight_decay: float = 1e-4
    lr_steps: list[int] = field(default_factory=lambda: [350, 480])
    lr_factor: float = 0.1
    schedule: str = "step"  # "step" (the original: x lr_factor at lr_steps) or "cosine" (engine/schedule.py)
    warmup_steps: int = 0  # linear warm-up (cosine schedule)
    min_lr_factor: float = 0.0  # where the cosine decay ends, relative to lr
    seed: int = 0
    amp: bool = True  # mixed precision on CUDA only
    grad_clip: float | None = None
    freeze_bn: bool = False  # keep BatchNorm in eval mode (fine-tuning, DDP equivalence checks)
    time_limit_min: float | None = None  # stop after the epoch that crosses this wall-clock budget
    # DDP: how long a collective may wait (process-group timeout); must exceed the longest
    # rank-0-only stretch (checkpoint writing, COCO scoring of the validation results).
    dist_timeout_min: float = 30.0
    max_steps_per_epoch: int | None = None  # cap an epoch (smoke runs)
    device: str = "auto"


@dataclass
class LossCfg:
    heatmap_factors: list[float] = field(default_factory=lambda: [1.0, 1.0])
    push_factor: float = 1e-3
    pull_factor: float = 1e-3
    push_type: str = "exp"  # "exp" (the original's) or "max" (HigherHRNet's code; has a gradient at equal tags)
    heatmap_fg_weight: float = 0.0  # > 0: heatmap pixels weighted 1 + w * target (0: the original MSE)
    teacher: str | None = None  # checkpoint of a larger model for heatmap distillation
    distill_factor: float = 1.0
    teacher_input_size: int | None = None


@dataclass
class SupernetCfg:
    widths: list[float] = field(default_factory=lambda: [1.0, 0.75, 0.5, 0.25])
    sizes: list[int] = field(default_factory=lambda: [256, 320, 384, 448, 512])
    kernels: list[int] = field(default_factory=lambda: [7])
    sandwich: bool = False  # largest + smallest + random subnets each step (gradients accumulated)
    # > 0 (with sandwich): the smaller subnets also learn the largest's heatmaps of the same step
    # (detached), weighted by this factor: in-place distillation, as BigNAS / OFA train a supernet
    inplace_distill: float = 0.0
    arch: str | None = None  # train one fixed subnet of the supernet


@dataclass
class ValCfg:
    every: int = 10  # epochs; 0 disables periodic validation
    flip_test: bool = True
    detection_threshold: float = 0.1
    # Supernet training: the subnet validated (preset or JSON; default: the --arch subnet, else the
    # largest of the search space), after recalibrating its BatchNorm on this many training batches.
    arch: str | None = None
    calib_batches: int = 8
    max_images: int | None = None  # score the first N val images only (long runs, large val sets); None: all


@dataclass
class TrainConfig:
    model: ModelCfg = field(default_factory=ModelCfg)
    data: DataCfg = field(default_factory=DataCfg)
    augment: Augmentation = field(default_factory=Augmentation)
    train: OptimCfg = field(default_factory=OptimCfg)
    loss: LossCfg = field(default_factory=LossCfg)
    supernet: SupernetCfg = field(default_factory=SupernetCfg)
    val: ValCfg = field(default_factory=ValCfg)
    source: str | None = None  # the YAML this came from (for relative paths)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> TrainConfig:
        cfg = cls()
        for section, values in (d or {}).items():
            if section == "source":
                cfg.source = values
                continue
            if not hasattr(cfg, section) or section == "source":
                raise ValueError(f"{where}: unknown section {section!r} (sections: {_sections()})")
            obj = getattr(cfg, section)
            if not isinstance(values, dict):
                raise ValueError(f"{where}: section {section!r} must be a mapping")
            names = {f.name for f in dataclasses.fields(obj)}
            converted = {}
            for k, v in values.items():
                if k not in names:
                    raise ValueError(f"{where}: {_unknown_key(cfg, section, k, names)}")
                converted[k] = convert_value(v, _hints(type(obj))[k], f"{where}: {section}.{k}")
            setattr(cfg, section, dataclasses.replace(obj, **converted))  # frozen sections too
        return cfg

    def transform_config(self, input_size: int) -> TransformConfig:
        """The training transform at ``input_size``: the ``augment`` section, ``data.sigma``, ``data.max_people``."""
        aug = {f.name: getattr(self.augment, f.name) for f in dataclasses.fields(self.augment)}
        return TransformConfig(input_size=input_size, sigma=self.data.sigma, max_people=self.data.max_people, **aug)

    @classmethod
    def load(
        cls, path: str | Path | None, overrides: list[str] | None = None, settings: dict[str, Any] | None = None
    ) -> TrainConfig:
        """The config in ``path`` with ``overrides`` (``"section.key=value"``, values as YAML) and then
        ``settings`` (``{"section.key": value}``, values as given: a command's own options) applied
        before it is converted, its paths resolved and it is checked, once."""
        data: dict[str, Any] = {}
        where = "config"
        if path is not None:
            p = Path(path)
            data = read_yaml(p, "config") or {}
            where = str(p)
            data["source"] = str(p.resolve())
        for key, value in [*parse_overrides(overrides or []), *(settings or {}).items()]:
            section, _, name = key.partition(".")
            if not name:
                raise ValueError(f"override {key!r} must look like section.key=value")
            # Checked here so that a bad override is reported as the override, not as the YAML.
            TrainConfig.from_dict({section: {name: value}}, "override")
            data.setdefault(section, {})[name] = value
        cfg = cls.from_dict(data, where)
        cfg.resolve_paths()
        cfg.check(where)
        return cfg

    def check(self, where: str = "config", *, runnable: bool = False) -> None:
        """Refuse values out of their range or choices, naming the key: every check of a config is
        here. ``runnable``: also what only a run needs (``data.train`` named); :meth:`load` checks
        what it read, the :class:`~litepose.engine.trainer.Trainer` the config it is given."""
        from ..models.spec import check_input_size

        t, d, v = self.train, self.data, self.val
        if runnable and not d.train:
            raise ValueError(f"{where}: data.train is empty (a COCO-format JSON or a SynthPose folder)")
        choices = (("train.optimizer", t.optimizer, OPTIMIZERS), ("train.schedule", t.schedule, SCHEDULES))
        for key, value, known in choices:
            if value not in known:
                raise ValueError(f"{where}: {key} {value!r} is not one of {list(known)}")
        unknown = sorted(set(d.synthpose or ()) - set(SYNTHPOSE_KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown} in data.synthpose (known: {sorted(SYNTHPOSE_KEYS)})")

        def positive(x: float | None) -> bool:
            return x is not None and math.isfinite(x) and x > 0

        rules = [
            ("train.epochs", t.epochs, t.epochs >= 1, "at least 1"),
            ("train.batch_size", t.batch_size, t.batch_size >= 1, "at least 1"),
            ("train.lr", t.lr, positive(t.lr), "a positive number"),
            ("train.max_steps_per_epoch", t.max_steps_per_epoch, t.max_steps_per_epoch is None
             or t.max_steps_per_epoch >= 1, "at least 1 (or null: no cap)"),
            ("train.time_limit_min", t.time_limit_min, t.time_limit_min is None or positive(t.time_limit_min),
             "a positive number of minutes (or null: no limit)"),
            ("train.grad_clip", t.grad_clip, t.grad_clip is None or (math.isfinite(t.grad_clip) and t.grad_clip >= 0),
             "0 or more (the largest gradient norm; 0 or null: no clipping)"),
            ("train.warmup_steps", t.warmup_steps, t.warmup_steps >= 0, "0 (no warm-up) or more steps"),
            ("train.dist_timeout_min", t.dist_timeout_min, positive(t.dist_timeout_min),
             "a positive number of minutes"),
            ("data.workers", d.workers, d.workers is None or d.workers >= 0,
             "0 (load in the training process) or more processes (or null: auto)"),
            ("data.cache_mb", d.cache_mb, math.isfinite(d.cache_mb) and d.cache_mb >= 0, "0 (no cache) or more MB"),
            ("data.sigma", d.sigma, positive(d.sigma), "a positive number (the width of the target Gaussians)"),
            ("data.max_people", d.max_people, d.max_people >= 1, "at least 1"),
            ("val.every", v.every, v.every >= 0, "0 (no periodic validation) or more epochs"),
            ("supernet.inplace_distill", self.supernet.inplace_distill, self.supernet.inplace_distill == 0
             or (positive(self.supernet.inplace_distill) and self.supernet.sandwich),
             "0, or a positive factor with supernet.sandwich=true (the largest subnet is the teacher)"),
            ("val.max_images", v.max_images, v.max_images is None or v.max_images >= 1,
             "at least 1 (or null: every val image)"),
            ("val.detection_threshold", v.detection_threshold,
             math.isfinite(v.detection_threshold) and 0 <= v.detection_threshold <= 1, "a number in [0, 1]"),
        ]  # fmt: skip
        for key, value, ok, rule in rules:
            if not ok:
                raise ValueError(f"{where}: {key} must be {rule}, got {value!r}")
        if self.model.input_size is not None:
            check_input_size(self.model.input_size, f"{where}: model.input_size")
        if self.model.sync_bn:
            self._check_sync_bn(where)

    def _check_sync_bn(self, where: str) -> None:
        """``model.sync_bn=true`` needs a CUDA device (NCCL) and a plain network: refused otherwise, here
        rather than at the first forward pass of a DDP run."""
        from ..device import pick_device

        if is_supernet(self.model.arch):
            raise ValueError(
                f"{where}: model.sync_bn=true is not supported with model.arch: litepose-super (the supernet "
                "normalises channel slices with F.batch_norm, which SyncBatchNorm cannot replace); "
                "set model.sync_bn=false"
            )
        device = pick_device(self.train.device)
        if device.type != "cuda":
            raise ValueError(
                f"{where}: model.sync_bn=true needs CUDA (SyncBatchNorm runs on NCCL), but train.device "
                f"{self.train.device!r} is the {device.type.upper()} here; set model.sync_bn=false"
            )

    def resolve_paths(self) -> None:
        """Make data / checkpoint paths relative to the config file absolute."""
        if not self.source:
            return
        base = Path(self.source).parent

        def fix(p: str | None) -> str | None:
            if not p:
                return p
            q = Path(p)
            if q.is_absolute() or q.exists():
                return p
            cand = base / q
            return str(cand) if cand.exists() else p

        d = self.data
        d.train, d.train_images, d.val, d.val_images = (
            fix(d.train) or "",
            fix(d.train_images),
            fix(d.val),
            fix(d.val_images),
        )
        self.model.pretrained = fix(self.model.pretrained)
        self.loss.teacher = fix(self.loss.teacher)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: The keys a resumed run may change (docs/training.md, "Resuming a run"): how long it goes on, how
#: it is validated and what it runs on. Any other difference from the run being resumed is refused
#: (:func:`resume_differences`), because the resumed steps would not be the run its files describe.
RESUME_CHANGEABLE = (
    "train.epochs",
    "train.time_limit_min",
    "train.dist_timeout_min",
    "train.device",
    "data.workers",
    "data.cache_mb",
    "val.every",
    "val.max_images",
    "val.flip_test",
    "val.detection_threshold",
)


def flat_config(d: dict[str, Any]) -> dict[str, Any]:
    """A config dict (:meth:`TrainConfig.to_dict`, or a run's ``config.yaml``) as ``{"section.key":
    value}``, values as plain JSON types (tuples become lists); ``source`` is left out."""
    import json

    out = {}
    for section, values in (d or {}).items():
        if section == "source" or not isinstance(values, dict):
            continue
        for key, value in values.items():
            out[f"{section}.{key}"] = json.loads(json.dumps(value, default=str))
    return out


def resume_differences(recorded: dict[str, Any], current: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The keys whose values differ between the config a run was trained with (``recorded``) and
    the one it is resumed with (``current``), both as :meth:`TrainConfig.to_dict` gives them, as
    ``"key old -> new"`` lines: ``(refused, allowed)``, allowed being :data:`RESUME_CHANGEABLE`.
    A key one side lacks (a config of another litepose version) is not compared."""
    old, new = flat_config(recorded), flat_config(current)
    refused, allowed = [], []
    for key in new:
        if key in old and old[key] != new[key]:
            line = f"{key} {old[key]!r} -> {new[key]!r}"
            (allowed if key in RESUME_CHANGEABLE else refused).append(line)
    return refused, allowed


def _sections() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig) if f.name != "source"]


def _unknown_key(cfg: TrainConfig, section: str, key: str, names: set[str]) -> str:
    """The message for an unknown ``section.key``: its replacement if it was renamed, the section
    it belongs to if it is another's, else the keys this section knows."""
    if f"{section}.{key}" in RENAMED:
        return f"{section}.{key} is now {RENAMED[section + '.' + key]} (the augmentation's one set of names)"
    for other in _sections():
        if other != section and key in {f.name for f in dataclasses.fields(getattr(cfg, other))}:
            return f"unknown key {section}.{key}: it belongs to section {other!r} ({other}.{key})"
    return f"unknown key {section}.{key} (known: {sorted(names)})"


def parse_overrides(items: list[str]) -> list[tuple[str, Any]]:
    """``["train.epochs=1", "data.workers=0"]`` -> ``[("train.epochs", 1), ...]`` (YAML values)."""
    out = []
    for item in items:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like section.key=value")
        key, value = item.split("=", 1)
        try:
            out.append((key.strip(), yaml.safe_load(value)))
        except yaml.YAMLError:
            out.append((key.strip(), value))
        except RecursionError:
            raise ValueError(f"override {key.strip()}: its value is nested too deeply to parse") from None
    return out


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """The resolved field annotations of a config dataclass (the file uses string annotations)."""
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "")


def convert_value(value: Any, tp: Any, key: str) -> Any:
    """``value`` converted to the annotated type ``tp``; a ``ValueError`` naming ``key`` if it cannot be.

    Accepted: ints for floats, numeric strings for numbers (``'4e-3'``, which YAML 1.1 reads as a
    string), integral floats for ints, ``true``/``false`` (also ``yes``/``no``/``on``/``off``,
    0/1) for bools, numbers for strings, ``null`` (or ``none``) for ``X | None``, lists element by
    element. Annotations other than these pass the value through unchanged.
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            if type(None) in args:
                return None
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and rest[0] not in _SCALARS:  # list / dict | None: the message names the element
            return convert_value(value, rest[0], key)
        for arg in rest:
            try:
                return convert_value(value, arg, key)
            except ValueError:
                continue
        raise ValueError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ValueError(f"{key}: expected one of {list(args)}, got {value!r}")
    if origin in (list, tuple) and args:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{key}: expected a list of {_type_name(args[0])} such as [1, 2], got {value!r}")
        item = args[0]
        return origin(convert_value(v, item, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict and len(args) == 2:
        if not isinstance(value, dict):
            raise ValueError(f"{key}: expected a mapping {_type_name(tp)}, got {value!r}")
        return {convert_value(k, args[0], key): convert_value(v, args[1], f"{key}.{k}") for k, v in value.items()}
    if tp in _SCALARS:
        out = _SCALARS[tp](value)
        if out is _BAD:
            raise ValueError(f"{key}: expected {_type_name(tp)}, got {value!r}")
        return out
    return value


_BAD = object()
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _to_bool(v: Any) -> Any:
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
        return v.strip().lower() in _TRUE
    return _BAD


def _to_float(v: Any) -> Any:
    if isinstance(v, bool):
        return _BAD
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return _BAD
    return _BAD


def _to_int(v: Any) -> Any:
    if isinstance(v, bool):
        return _BAD
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            pass
    f = _to_float(v)  # 2.0 or '1e3': integral values only
    if f is not _BAD and math.isfinite(f) and float(f).is_integer():
        return int(f)
    return _BAD


def _to_str(v: Any) -> Any:
    if isinstance(v, str):
        return v
    if isinstance(v, int | float) and not isinstance(v, bool):
        return str(v)
    return _BAD


_SCALARS = {bool: _to_bool, float: _to_float, int: _to_int, str: _to_str}
