"""The supernet's search space, declared once: what the supernet trainer samples and what
``litepose search`` explores.

A :class:`SearchSpace` is the original's (``ArchManager``): an input size from ``sizes``, a
width multiplier from ``widths`` for the stem, each stage and each deconv layer (leading
channel slices of the supernet's tensors, make_divisible 8), and per block a kernel from
``kernels`` and an expansion from ``expansions`` (the original: 7 and 6 only). The depth is
the supernet's (``max_spec``). A config narrows it through its ``supernet:`` section
(``widths``, ``sizes``, ``kernels``).

For the evolution an architecture is also a tuple of genes (:meth:`SearchSpace.encode`): the
size, the stem, four stage and three deconv widths, then a kernel and an expansion per block.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .spec import (
    SUPERNET_KERNELS,
    SUPERNET_MAX_EXPANSION,
    SUPERNET_SIZES,
    SUPERNET_SPEC,
    SUPERNET_WIDTHS,
    ArchSpec,
    StageSpec,
    check_input_size,
    make_divisible,
)

__all__ = ["SearchSpace", "Genes", "sample_arch"]

#: An architecture as the evolution sees it (see :meth:`SearchSpace.encode`).
Genes = tuple


def _unique(values: Sequence[Any]) -> tuple:
    out: list[Any] = []
    for v in values:
        if v not in out:
            out.append(v)
    return tuple(out)


@dataclass(frozen=True)
class SearchSpace:
    """Subnets of a supernet: sizes, width multipliers, kernels and expansions to choose from."""

    widths: tuple[float, ...] = SUPERNET_WIDTHS
    sizes: tuple[int, ...] = SUPERNET_SIZES
    kernels: tuple[int, ...] = (7,)
    expansions: tuple[float, ...] = (6,)
    max_spec: ArchSpec = field(default=SUPERNET_SPEC, compare=False)

    def __post_init__(self) -> None:
        for name in ("widths", "sizes", "kernels", "expansions"):
            values = tuple(getattr(self, name))
            if not values:
                raise ValueError(f"search space: {name} is empty")
            object.__setattr__(self, name, values)
        for s in self.sizes:
            check_input_size(s, "search space: input size")
        for w in self.widths:
            if not 0 < float(w) <= 1:
                raise ValueError(f"search space: width multipliers lie in (0, 1], got {w}")
        for k in self.kernels:
            if k not in SUPERNET_KERNELS:
                raise ValueError(f"search space: kernels are among {SUPERNET_KERNELS}, got {k}")
        for t in self.expansions:
            if not 0 < float(t) <= SUPERNET_MAX_EXPANSION:
                raise ValueError(f"search space: expansions lie in (0, {SUPERNET_MAX_EXPANSION}], got {t}")

    @classmethod
    def from_config(
        cls,
        supernet: Any,
        max_spec: ArchSpec = SUPERNET_SPEC,
        *,
        expansions: Sequence[float] | None = None,
    ) -> SearchSpace:
        """The space of a config's ``supernet`` section (a :class:`~litepose.engine.config.SupernetCfg`
        or a dict with ``widths``, ``sizes``, ``kernels``; missing keys: the original's)."""
        get = supernet.get if isinstance(supernet, Mapping) else lambda k, d=None: getattr(supernet, k, d)
        default = cls()
        return cls(
            widths=tuple(float(w) for w in get("widths", None) or default.widths),
            sizes=tuple(int(s) for s in get("sizes", None) or default.sizes),
            kernels=tuple(int(k) for k in get("kernels", None) or default.kernels),
            expansions=tuple(expansions) if expansions else default.expansions,
            max_spec=max_spec,
        )

    def replace(self, **changes: Any) -> SearchSpace:
        """A copy with some dimensions changed (``None`` values are ignored)."""
        kw = {n: getattr(self, n) for n in ("widths", "sizes", "kernels", "expansions", "max_spec")}
        kw.update({k: v for k, v in changes.items() if v is not None})
        return SearchSpace(**kw)

    def as_dict(self) -> dict[str, Any]:
        return {
            "widths": list(self.widths),
            "sizes": list(self.sizes),
            "kernels": list(self.kernels),
            "expansions": list(self.expansions),
            "max_spec": self.max_spec.to_json(),
        }

    # -- sampling (the supernet trainer's per-step subnet) --------------------------------------------

    def width(self, max_channels: int, multiplier: float) -> int:
        return make_divisible(max_channels * multiplier, 8)

    def sample(self, rng: random.Random, blocks: Sequence[int] | None = None) -> ArchSpec:
        """A random subnet, as the original's ``ArchManager.random_sample``.

        Every width (stem, each stage, each deconv) draws its own multiplier; the input size, the
        kernel of each block and (when several) its expansion are drawn too. ``blocks`` fixes the
        number of blocks per stage (default: the supernet's depth). The draws are made in a fixed
        order, so a seeded ``rng`` gives the same subnet on every rank and every run.
        """
        m = self.max_spec

        def w(c: int) -> int:
            return self.width(c, rng.choice(list(self.widths)))

        size = rng.choice(list(self.sizes))
        stem = w(m.stem_channels)
        deconv = tuple(w(c) for c in m.deconv)
        stages = []
        for i, st in enumerate(m.stages):
            n = st.num_blocks if blocks is None else blocks[i]
            c = w(st.channels)
            block_list = []
            for _ in range(n):
                k = rng.choice(list(self.kernels))
                t = rng.choice(list(self.expansions)) if len(self.expansions) > 1 else self.expansions[0]
                block_list.append((t, k))
            stages.append(StageSpec(c, st.stride, tuple(block_list)))
        return ArchSpec(size, stem, tuple(stages), deconv)  # type: ignore[arg-type]

    def extreme(self, largest: bool) -> ArchSpec:
        """The largest (or smallest) subnet: every width, size, kernel and expansion at its max (min)."""
        pick = max if largest else min
        sub = SearchSpace(
            (pick(self.widths),), (pick(self.sizes),), (pick(self.kernels),), (pick(self.expansions),), self.max_spec
        )
        return sub.sample(random.Random(0))

    # -- genes (the evolution) ------------------------------------------------------------------------

    def gene_options(self) -> list[tuple]:
        """The values each gene may take, in :meth:`encode` order."""
        m = self.max_spec
        chans = [_unique([self.width(c, w) for w in self.widths]) for c in (m.stem_channels,)]
        chans += [_unique([self.width(st.channels, w) for w in self.widths]) for st in m.stages]
        chans += [_unique([self.width(c, w) for w in self.widths]) for c in m.deconv]
        n_blocks = sum(st.num_blocks for st in m.stages)
        return [tuple(self.sizes), *chans, *[tuple(self.kernels)] * n_blocks, *[tuple(self.expansions)] * n_blocks]

    def encode(self, spec: ArchSpec) -> Genes:
        """``spec`` as genes: (size, stem, 4 stage widths, 3 deconv widths, kernels..., expansions...)."""
        self.check(spec)
        kernels = [k for st in spec.stages for _, k in st.blocks]
        expansions = [t for st in spec.stages for t, _ in st.blocks]
        return (spec.input_size, spec.stem_channels, *(st.channels for st in spec.stages), *spec.deconv,
                *kernels, *expansions)  # fmt: skip

    def decode(self, genes: Sequence[Any]) -> ArchSpec:
        m = self.max_spec
        n_blocks = sum(st.num_blocks for st in m.stages)
        if len(genes) != 9 + 2 * n_blocks:
            raise ValueError(f"search space: expected {9 + 2 * n_blocks} genes, got {len(genes)}")
        size, stem, *rest = genes
        chans, deconv = rest[:4], rest[4:7]
        kernels, expansions = rest[7 : 7 + n_blocks], rest[7 + n_blocks :]
        stages, at = [], 0
        for st, c in zip(m.stages, chans):
            n = st.num_blocks
            blocks = tuple((expansions[at + j], kernels[at + j]) for j in range(n))
            stages.append(StageSpec(int(c), st.stride, blocks))
            at += n
        return ArchSpec(int(size), int(stem), tuple(stages), tuple(int(d) for d in deconv))  # type: ignore[arg-type]

    def check(self, spec: ArchSpec) -> None:
        """Raise a ValueError naming what of ``spec`` lies outside this space."""
        m = self.max_spec
        problems = []
        if spec.input_size not in self.sizes:
            problems.append(f"input size {spec.input_size} not in {list(self.sizes)}")
        opts = self.gene_options()
        widths = (spec.stem_channels, *(st.channels for st in spec.stages), *spec.deconv)
        names = ["stem", "stage 1", "stage 2", "stage 3", "stage 4", "deconv 1", "deconv 2", "deconv 3"]
        for name, value, allowed in zip(names, widths, opts[1:9]):
            if value not in allowed:
                problems.append(f"{name} width {value} not in {list(allowed)}")
        for i, (st, mst) in enumerate(zip(spec.stages, m.stages)):
            if st.num_blocks != mst.num_blocks:
                problems.append(f"stage {i + 1} has {st.num_blocks} blocks, the space {mst.num_blocks}")
            for t, k in st.blocks:
                if k not in self.kernels:
                    problems.append(f"stage {i + 1} kernel {k} not in {list(self.kernels)}")
                if t not in self.expansions:
                    problems.append(f"stage {i + 1} expansion {t} not in {list(self.expansions)}")
        if problems:
            raise ValueError("architecture outside the search space: " + "; ".join(_unique(problems)))

    def contains(self, spec: ArchSpec) -> bool:
        try:
            self.check(spec)
        except ValueError:
            return False
        return True

    def mutate(self, genes: Genes, rng: random.Random, prob: float) -> Genes:
        """Each gene redrawn from its options with probability ``prob`` (the original's mutation)."""
        out = list(genes)
        for i, options in enumerate(self.gene_options()):
            if rng.random() < prob:
                out[i] = rng.choice(list(options))
        return tuple(out)

    def crossover(self, a: Genes, b: Genes, rng: random.Random) -> Genes:
        """Each gene from either parent with equal probability (the original's crossover)."""
        return tuple(x if rng.random() < 0.5 else y for x, y in zip(a, b))


def sample_arch(
    rng: random.Random,
    *,
    widths: Sequence[float] = SUPERNET_WIDTHS,
    sizes: Sequence[int] = SUPERNET_SIZES,
    kernels: Sequence[int] = (7,),
    blocks: Sequence[int] | None = None,
    max_spec: ArchSpec = SUPERNET_SPEC,
) -> ArchSpec:
    """Draw a random subnet as the original's ``ArchManager.random_sample``: a shorthand for
    :meth:`SearchSpace.sample` of the space with these dimensions (expansion 6)."""
    return SearchSpace(tuple(widths), tuple(sizes), tuple(kernels), (6,), max_spec).sample(rng, blocks)
