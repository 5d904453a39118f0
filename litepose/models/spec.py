"""Architecture specs: what a LitePose network looks like, independent of its weights.

A spec is the original's architecture JSON (``mobile_configs/search-*.json``) as a frozen
dataclass: input size, stem width, four stages of inverted bottlenecks (channels, blocks,
stride, per-block expansion and kernel) and the three deconv widths of the fusion head.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "StageSpec",
    "ArchSpec",
    "PRESETS",
    "SUPERNET_SPEC",
    "INPUT_STRIDE",
    "MAX_WIDTH",
    "MAX_KERNEL",
    "MAX_EXPANSION",
    "MAX_BLOCKS",
    "MAX_INPUT_SIZE",
    "check_input_size",
    "make_divisible",
    "resolve_spec",
]

#: The network downsamples its input by 16 (a stride-2 stem, then stages of strides 2, 2, 2, 1), so
#: an input side must be a multiple of 16.
INPUT_STRIDE = 16

# Bounds on an architecture, checked whenever a spec is made. They are far above every published
# LitePose (widths <= 160, kernel 7, expansion 6, <= 10 blocks, input <= 512) and low enough that a
# typo (an extra zero, a negative sign) is refused instead of building a network that needs absurd
# memory: at the caps one inverted bottleneck alone holds 1024 * 16 * 1024 * 2 = 33.5 M weights.
#: Widest layer (stem, stage and deconv channels).
MAX_WIDTH = 1024
#: Largest (odd) depthwise kernel.
MAX_KERNEL = 15
#: Largest expansion ratio of an inverted bottleneck.
MAX_EXPANSION = 16
#: Most blocks in one stage.
MAX_BLOCKS = 64
#: Largest input side.
MAX_INPUT_SIZE = 4096


def check_input_size(size: Any, what: str = "input size") -> int:
    """``size`` as an int when it is a positive multiple of :data:`INPUT_STRIDE`, else a ValueError
    that says why (a size is never silently changed)."""
    try:
        n = operator.index(size)
    except TypeError:
        raise ValueError(f"{what} must be an integer, got {size!r}") from None
    if n < INPUT_STRIDE or n % INPUT_STRIDE:
        raise ValueError(
            f"{what} must be a positive multiple of {INPUT_STRIDE} (the network downsamples its input "
            f"by {INPUT_STRIDE}), got {n}"
        )
    return n


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``v`` to a multiple of ``divisor`` (MobileNetV2 rule, never more than 10% down)."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def expanded_width(in_channels: int, expansion: float) -> int:
    """Hidden width of an inverted bottleneck (the original: make_divisible(round(cin * t), 8))."""
    return make_divisible(round(in_channels * expansion), 8)


@dataclass(frozen=True)
class StageSpec:
    """One backbone stage: ``blocks`` holds (expansion, kernel) for each block."""

    channels: int
    stride: int
    blocks: tuple[tuple[float, int], ...]

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)


@dataclass(frozen=True)
class ArchSpec:
    """A full LitePose architecture (everything but the number of joints)."""

    input_size: int
    stem_channels: int
    stages: tuple[StageSpec, ...]
    deconv: tuple[int, int, int]

    def __post_init__(self) -> None:
        # Every construction (JSON, preset, search space, checkpoint shapes) passes here, so a spec
        # that exists is one the model builder can build in sane memory. Fields are named as in the
        # architecture JSON so an error points at the line to fix.
        _check_int(self.input_size, "img_size", INPUT_STRIDE, MAX_INPUT_SIZE)
        if self.input_size % INPUT_STRIDE:
            raise ValueError(
                f"img_size must be a multiple of {INPUT_STRIDE} (the network downsamples its input "
                f"by {INPUT_STRIDE}), got {self.input_size}"
            )
        _check_int(self.stem_channels, "input_channel", 1, MAX_WIDTH)
        if len(self.stages) != 4:
            raise ValueError(f"LitePose has 4 backbone stages, spec has {len(self.stages)}")
        if len(self.deconv) != 3:
            raise ValueError(f"LitePose has 3 deconv layers, spec has {len(self.deconv)}")
        for i, c in enumerate(self.deconv):
            _check_int(c, f"deconv_setting[{i}]", 1, MAX_WIDTH)
        for i, st in enumerate(self.stages):
            where = f"backbone_setting[{i}]"
            _check_int(st.channels, f"{where}.channel", 1, MAX_WIDTH)
            if not 1 <= st.num_blocks <= MAX_BLOCKS:
                raise ValueError(f"{where} must have 1 to {MAX_BLOCKS} blocks, has {st.num_blocks}")
            for j, (t, k) in enumerate(st.blocks):
                at = f"{where}.block_setting[{j}]"
                _check_int(k, f"{at} kernel", 1, MAX_KERNEL)
                if k % 2 != 1:
                    raise ValueError(f"{at} kernel must be odd, got {k}")
                if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
                    raise ValueError(f"{at} expansion must be a number, got {t!r}")
                if not 0 < t <= MAX_EXPANSION:
                    raise ValueError(f"{at} expansion must be in (0, {MAX_EXPANSION}], got {t}")
        strides = [s.stride for s in self.stages]
        if strides != [2, 2, 2, 1]:
            # The fusion head adds deconvs of stages 3 and 4 at one resolution, then of stages 2 and 1.
            raise ValueError(f"LitePose needs backbone_setting strides [2, 2, 2, 1], spec has {strides}")

    # -- original JSON format ---------------------------------------------------------------------

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ArchSpec:
        """Parse the original architecture JSON (``img_size``, ``input_channel``, ...)."""
        if not isinstance(d, dict):
            kind = type(d).__name__
            raise ValueError(f"an architecture JSON is an object (img_size, input_channel, ...), not a {kind}")
        try:
            stages = []
            for i, st in enumerate(_list(d["backbone_setting"], "backbone_setting")):
                where = f"backbone_setting[{i}]"
                if not isinstance(st, dict):
                    raise ValueError(f"{where} must be an object (channel, stride, ...), got {st!r}")
                settings = _list(st["block_setting"], f"{where}.block_setting")
                blocks = []
                for j, b in enumerate(settings):
                    at = f"{where}.block_setting[{j}]"
                    if not isinstance(b, list) or len(b) != 2:
                        raise ValueError(f"{at} must be [expansion, kernel], got {b!r}")
                    blocks.append((_num(b[0], f"{at} expansion"), _int(b[1], f"{at} kernel")))
                n = _int(st.get("num_blocks", len(blocks)), f"{where}.num_blocks")
                if not 1 <= n <= len(blocks):
                    raise ValueError(
                        f"{where}.num_blocks is {n}; it must be 1 to the {len(blocks)} block settings given"
                    )
                stages.append(
                    StageSpec(
                        _int(st["channel"], f"{where}.channel"),
                        _int(st["stride"], f"{where}.stride"),
                        tuple(blocks[:n]),
                    )
                )
            deconv = _list(d["deconv_setting"], "deconv_setting")
            return cls(
                input_size=_int(d.get("img_size", 256), "img_size"),
                stem_channels=_int(d["input_channel"], "input_channel"),
                stages=tuple(stages),
                deconv=tuple(_int(c, f"deconv_setting[{i}]") for i, c in enumerate(deconv)),  # type: ignore[arg-type]
            )
        except KeyError as e:
            raise ValueError(f"architecture JSON lacks key {e.args[0]!r}") from None

    def to_json(self) -> dict[str, Any]:
        return {
            "img_size": self.input_size,
            "input_channel": self.stem_channels,
            "deconv_setting": list(self.deconv),
            "backbone_setting": [
                {
                    "num_blocks": st.num_blocks,
                    "stride": st.stride,
                    "channel": st.channels,
                    "block_setting": [[t, k] for t, k in st.blocks],
                }
                for st in self.stages
            ],
        }

    @classmethod
    def load(cls, path: str | Path) -> ArchSpec:
        from ..data.jsonio import read_json

        p = Path(path)
        try:
            data = read_json(p, "architecture file")
        except OSError as e:
            raise ValueError(f"{p}: cannot read architecture JSON: {e}") from None
        try:
            return cls.from_json(data)
        except ValueError as e:
            raise ValueError(f"{p}: {e}") from None

    def with_input_size(self, size: int) -> ArchSpec:
        return ArchSpec(size, self.stem_channels, self.stages, self.deconv)

    @classmethod
    def uniform(
        cls,
        input_size: int,
        stem: int,
        channels: tuple[int, ...],
        deconv: tuple[int, int, int],
        blocks: tuple[int, ...] = (6, 8, 10, 10),
        kernel: int = 7,
        expansion: float = 6,
    ) -> ArchSpec:
        strides = (2, 2, 2, 1)
        return cls(
            input_size,
            stem,
            tuple(
                StageSpec(c, s, tuple((expansion, kernel) for _ in range(n)))
                for c, s, n in zip(channels, strides, blocks)
            ),
            deconv,
        )


def _check_int(value: Any, field: str, lo: int, hi: int) -> None:
    """A ValueError naming ``field`` unless ``value`` is an int in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{field} must be {lo} to {hi}, got {value}")


def _int(v: Any, field: str) -> int:
    """A JSON integer (``16`` or ``16.0``), never a truncated ``16.5``, a string or a boolean."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v != int(v):
        raise ValueError(f"{field} must be an integer, got {v!r}")
    return int(v)


def _num(t: Any, field: str) -> float:
    """A finite JSON number, as an int when it is integral (expansions are usually whole)."""
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        raise ValueError(f"{field} must be a number, got {t!r}")
    return int(t) if float(t).is_integer() else float(t)


def _list(v: Any, field: str) -> list:
    if not isinstance(v, list):
        raise ValueError(f"{field} must be a list, got {v!r}")
    return v


PRESETS: dict[str, ArchSpec] = {
    "litepose-xs": ArchSpec.uniform(256, 16, (16, 32, 48, 80), (16, 24, 24)),
    "litepose-s": ArchSpec.uniform(448, 16, (16, 32, 48, 120), (32, 24, 32)),
    "litepose-m": ArchSpec.uniform(448, 16, (24, 48, 72, 120), (64, 40, 32)),
    "litepose-l": ArchSpec.uniform(512, 24, (24, 64, 96, 160), (64, 40, 32)),
}

# The supernet's largest configuration (the shapes of its tensors).
SUPERNET_SPEC = ArchSpec.uniform(512, 24, (32, 64, 96, 160), (64, 48, 32))
SUPERNET_WIDTHS = (1.0, 0.75, 0.5, 0.25)
SUPERNET_KERNELS = (7, 5, 3)
#: The supernet builds every block at this expansion; a subnet's expansions lie in (0, this].
SUPERNET_MAX_EXPANSION = 6
SUPERNET_SIZES = (256, 320, 384, 448, 512)

#: Names of the supernet (``create_model("litepose-super")``).
SUPERNET_NAMES = ("litepose-super", "super", "supernet")


def list_models() -> list[str]:
    """Names ``create_model`` accepts (besides JSON specs)."""
    return [*PRESETS, "litepose-super"]


_ALIASES = {"xs": "litepose-xs", "s": "litepose-s", "m": "litepose-m", "l": "litepose-l"}


def is_supernet(name: str) -> bool:
    """Whether an architecture name (``model.arch``, ``create_model``) means the supernet."""
    return preset_name(str(name)) in SUPERNET_NAMES


def preset_name(name: str) -> str:
    """Normalise ``XS``, ``litepose_xs``, ``LitePose-XS`` ... to ``litepose-xs``."""
    n = name.lower().replace("_", "-")
    n = _ALIASES.get(n, n)
    if n.startswith("litepose") and not n.startswith("litepose-"):
        n = "litepose-" + n[len("litepose") :]
    return n


def resolve_spec(arch: str | Path | dict | ArchSpec) -> tuple[str, ArchSpec]:
    """Turn a preset name, JSON path, JSON dict or spec into ``(name, spec)``.

    ``name`` is the preset name when the spec equals a preset, else ``"custom"``.
    """
    if isinstance(arch, ArchSpec):
        spec = arch
    elif isinstance(arch, dict):
        spec = ArchSpec.from_json(arch)
    else:
        s = str(arch)
        if preset_name(s) in PRESETS:
            return preset_name(s), PRESETS[preset_name(s)]
        p = Path(s)
        if p.suffix.lower() == ".json" or p.is_file():
            if not p.is_file():
                raise FileNotFoundError(f"architecture file {p} does not exist")
            spec = ArchSpec.load(p)
        else:
            raise ValueError(f"unknown model {s!r}: use one of {sorted(PRESETS)} or a path to an architecture JSON")
    return spec_name(spec), spec


def spec_name(spec: ArchSpec) -> str:
    for name, p in PRESETS.items():
        if p == spec:
            return name
    return "custom"
