"""Architecture specs: what a LitePose network looks like, independent of its weights.

A spec is the original's architecture JSON (``mobile_configs/search-*.json``) as a frozen
dataclass: input size, stem width, four stages of inverted bottlenecks (channels, blocks,
stride, per-block expansion and kernel) and the three deconv widths of the fusion head.
"""

from __future__ import annotations

import json
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
    "check_input_size",
    "make_divisible",
    "resolve_spec",
]

#: The network downsamples its input by 16 (a stride-2 stem, then stages of strides 2, 2, 2, 1), so
#: an input side must be a multiple of 16.
INPUT_STRIDE = 16


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
        if len(self.stages) != 4:
            raise ValueError(f"LitePose has 4 backbone stages, spec has {len(self.stages)}")
        if len(self.deconv) != 3:
            raise ValueError(f"LitePose has 3 deconv layers, spec has {len(self.deconv)}")
        for i, st in enumerate(self.stages):
            if st.num_blocks < 1:
                raise ValueError(f"stage {i} has no blocks")
            for t, k in st.blocks:
                if k % 2 != 1:
                    raise ValueError(f"stage {i}: kernel {k} must be odd")
                if t <= 0:
                    raise ValueError(f"stage {i}: expansion {t} must be positive")
        strides = [s.stride for s in self.stages]
        if strides != [2, 2, 2, 1]:
            # The fusion head adds deconvs of stages 3 and 4 at one resolution, then of stages 2 and 1.
            raise ValueError(f"LitePose needs stage strides [2, 2, 2, 1], spec has {strides}")

    # -- original JSON format ---------------------------------------------------------------------

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ArchSpec:
        """Parse the original architecture JSON (``img_size``, ``input_channel``, ...)."""
        if not isinstance(d, dict):
            kind = type(d).__name__
            raise ValueError(f"an architecture JSON is an object (img_size, input_channel, ...), not a {kind}")
        try:
            stages = []
            for st in d["backbone_setting"]:
                blocks = tuple((_num(t), int(k)) for t, k in st["block_setting"])
                n = int(st.get("num_blocks", len(blocks)))
                if n > len(blocks):
                    raise ValueError(f"num_blocks {n} but only {len(blocks)} block settings")
                stages.append(StageSpec(int(st["channel"]), int(st["stride"]), blocks[:n]))
            return cls(
                input_size=int(d.get("img_size", 256)),
                stem_channels=int(d["input_channel"]),
                stages=tuple(stages),
                deconv=tuple(int(c) for c in d["deconv_setting"]),  # type: ignore[arg-type]
            )
        except KeyError as e:
            raise ValueError(f"architecture JSON lacks key {e.args[0]!r}") from None
        except (TypeError, AttributeError) as e:
            raise ValueError(f"architecture JSON has a value of the wrong type ({e})") from None

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
        p = Path(path)
        try:
            data = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as e:
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


def _num(t: Any) -> float:
    f = float(t)
    return int(f) if f.is_integer() else f


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
SUPERNET_SIZES = (256, 320, 384, 448, 512)

_ALIASES = {"xs": "litepose-xs", "s": "litepose-s", "m": "litepose-m", "l": "litepose-l"}


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
