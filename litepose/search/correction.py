"""The accuracy predictor's correction, learned from measured pairs.

The supernet's predicted AP (a subnet run with its shared weights) can rank architectures of one
input size and still misplace whole input sizes against each other: a supernet trained on sampled
sizes is better at some than a network fine-tuned at that size would be. ``benchmarks/search_rank.py``
measures (predicted, fine-tuned) AP pairs; :func:`fit_correction` fits

    fine-tuned AP ~ slope * predicted AP + offset[input size]

by least squares (one slope shared by all sizes, so the order within a size is kept when the slope
is positive), and ``litepose search --predictor-correction FILE`` ranks candidates by the corrected
value. A size the pairs did not cover has no offset: a search over it is refused rather than guessed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files import atomic_write

KIND = "litepose predictor correction"


@dataclass(frozen=True)
class PredictorCorrection:
    """``slope * predicted + offsets[input_size]``; ``pairs``: how many measured pairs it was fitted on."""

    slope: float
    offsets: dict[int, float]
    pairs: int = 0
    source: dict[str, Any] = field(default_factory=dict)

    def __call__(self, input_size: int, predicted: float) -> float:
        if input_size not in self.offsets:
            raise ValueError(f"the predictor correction has no offset for input size {input_size} "
                             f"(fitted on sizes {self.sizes_text()})")  # fmt: skip
        return self.slope * float(predicted) + self.offsets[input_size]

    def sizes_text(self) -> str:
        return ", ".join(str(s) for s in sorted(self.offsets))

    def check_sizes(self, sizes: Iterable[int], where: str = "the predictor correction") -> None:
        """Refuse a search over sizes the correction was not fitted on."""
        missing = sorted(set(int(s) for s in sizes) - set(self.offsets))
        if missing:
            raise ValueError(f"{where} covers input sizes {self.sizes_text()}, not {', '.join(map(str, missing))}: "
                             "narrow --sizes, or fit it on pairs of those sizes")  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {"kind": KIND, "slope": self.slope, "offsets": {str(k): v for k, v in sorted(self.offsets.items())},
                "pairs": self.pairs, "source": self.source}  # fmt: skip

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        text = json.dumps(self.to_json(), indent=1)
        atomic_write(path, lambda tmp: tmp.write_text(text))
        return path

    @classmethod
    def load(cls, path: str | Path) -> PredictorCorrection:
        """Read a correction file; a file that is not one is a ValueError naming it."""
        path = Path(path)
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise ValueError(f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a predictor correction ({e})") from None
        if not isinstance(doc, dict) or doc.get("kind") != KIND:
            raise ValueError(f"{path}: not a predictor correction (no kind {KIND!r}; "
                             "benchmarks/search_rank.py writes correction.json)")  # fmt: skip
        try:
            offsets = {int(k): float(v) for k, v in doc["offsets"].items()}
            return cls(float(doc["slope"]), offsets, int(doc.get("pairs", 0)), dict(doc.get("source") or {}))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ValueError(f"{path}: a malformed predictor correction ({e})") from None


def fit_correction(
    pairs: Sequence[tuple[int, float, float]], source: dict[str, Any] | None = None
) -> PredictorCorrection:
    """Least squares ``real ~ slope * predicted + offset[size]`` over ``(input_size, predicted, real)``.

    Needs more pairs than sizes and two different predictions within one size (else the slope is
    not determined)."""
    import numpy as np

    sizes = sorted({int(s) for s, _, _ in pairs})
    if len(pairs) <= len(sizes):
        raise ValueError(f"{len(pairs)} pairs over {len(sizes)} input sizes: too few to fit a slope and an offset each")
    within = [[p for s, p, _ in pairs if s == size] for size in sizes]
    if not any(len(set(ps)) > 1 for ps in within):
        raise ValueError("no input size has two different predictions: the slope is not determined")
    x = np.zeros((len(pairs), 1 + len(sizes)))
    y = np.zeros(len(pairs))
    for i, (s, p, r) in enumerate(pairs):
        x[i, 0] = p
        x[i, 1 + sizes.index(int(s))] = 1.0
        y[i] = r
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    offsets = {size: float(coef[1 + j]) for j, size in enumerate(sizes)}
    return PredictorCorrection(float(coef[0]), offsets, len(pairs), dict(source or {}))


def leave_one_out(pairs: Sequence[tuple[int, float, float]]) -> list[float | None]:
    """Each pair's prediction corrected by a fit on all the others (None where that fit is impossible:
    its size has no other pair, or too few pairs are left): how the correction does on unseen networks."""
    out: list[float | None] = []
    for i, (s, p, _) in enumerate(pairs):
        rest = [q for j, q in enumerate(pairs) if j != i]
        try:
            c = fit_correction(rest)
            out.append(c(int(s), p) if int(s) in c.offsets else None)
        except ValueError:
            out.append(None)
    return out
