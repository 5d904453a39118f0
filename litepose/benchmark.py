"""Whole-frame latency of every backend side by side: ``litepose benchmark``.

One image goes through :class:`~litepose.Predictor` again and again, for each backend (eager
unfolded torch first, what the original runs; then folded channels-last torch, ONNX Runtime fp32
and int8, OpenVINO fp32 and int8 where installed), with and without flip test. Each row gives
per-stage milliseconds (preprocess, network, decode = merge + grouping + back-projection, and
their total) as median / min / max over the runs, and the frames per second of the median.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["VARIANTS", "available_variants", "benchmark", "format_table"]

#: (backend, precision) in the order the rows come.
VARIANTS = (
    ("torch-eager", "fp32"),
    ("torch", "fp32"),
    ("onnxruntime", "fp32"),
    ("onnxruntime", "int8"),
    ("openvino", "fp32"),
    ("openvino", "int8"),
)
_STAGES = ("preprocess", "network", "decode", "total")


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def available_variants(backends: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """The rows :func:`benchmark` can make here: every variant whose runtime is installed (int8 on
    OpenVINO also needs nncf), restricted to ``backends`` (eager torch always comes first)."""
    need = {"onnxruntime": ("onnxruntime", "onnx"), "openvino": ("openvino", "onnx")}
    out = []
    for b, prec in VARIANTS:
        if backends and b not in backends and b != "torch-eager":
            continue
        mods = need.get(b, ())
        if prec == "int8" and b == "openvino":
            mods = (*mods, "nncf")
        if all(_installed(m) for m in mods):
            out.append((b, prec))
    return out


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def _time(predictor: Any, image: np.ndarray, runs: int, warmup: int) -> dict[str, list[float]]:
    for _ in range(warmup):
        predictor(image)
    times: dict[str, list[float]] = {s: [] for s in _STAGES}
    for _ in range(runs):
        predictor(image)
        last = predictor.timings.last
        for s in _STAGES[:3]:
            times[s].append(last[s])
        times["total"].append(sum(last[s] for s in _STAGES[:3]))
    return times


def _open(model: Any, backend: str, precision: str, tmp: Path, input_size: int | None, int8_images: int) -> Any:
    """What a Predictor takes for one variant: the torch model, or a file exported into ``tmp``."""
    if backend.startswith("torch"):
        return model
    from .export import export_model

    fmt = "onnx" if backend == "onnxruntime" else "openvino"
    ext = ".onnx" if fmt == "onnx" else ".xml"
    print(f"exporting {fmt} {precision}", file=sys.stderr)
    return export_model(
        model, fmt, tmp / f"{fmt}-{precision}{ext}", input_size=input_size, int8=precision == "int8",
        int8_images=int8_images,
    )  # fmt: skip


def benchmark(
    source: Any,
    *,
    backends: Sequence[str] | None = None,
    image: np.ndarray | None = None,
    flips: Sequence[bool] = (True, False),
    runs: int = 20,
    warmup: int = 3,
    threads: int | None = None,
    input_size: int | None = None,
    int8_images: int = 16,
    **predictor_kwargs: Any,
) -> list[dict[str, Any]]:
    """Benchmark rows (the ``--json`` shape, docs/cli.md) for ``source``: a torch model (every
    variant of :func:`available_variants`, exported on the fly) or an exported file (its own
    backend only). ``image``: RGB uint8, default a generated 640x480 SynthPose image."""
    from .predictor import Predictor
    from .runtime import FILE_SUFFIXES, default_backend

    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be at least 1 and warmup at least 0, got {runs} and {warmup}")
    if image is None:
        from .data.synth import render_image

        image = render_image(0, 0, (640, 480)).image
    exported = isinstance(source, (str, Path)) and Path(source).suffix.lower() in FILE_SUFFIXES
    if exported:
        b = (backends or [default_backend(source)])[0]
        variants: list[tuple[str, str]] = [(b, "")]
    else:
        if isinstance(source, (str, Path)):
            from .models import load_checkpoint

            source, _ = load_checkpoint(source)
        variants = available_variants(backends)
    rows = []
    with tempfile.TemporaryDirectory(prefix="litepose-bench-") as tmp:
        for backend, precision in variants:
            net = source if exported else _open(source, backend, precision, Path(tmp), input_size, int8_images)
            for flip in flips:
                p = Predictor(
                    net, backend=backend, threads=threads, input_size=input_size, flip_test=flip, **predictor_kwargs
                )
                times = _time(p, image, runs, warmup)
                _xs, _g, base = p._preprocess([image])
                row = {
                    "backend": p.backend.name,
                    "precision": p.backend.precision,
                    "model": p.backend.info.arch,
                    "input": [base.size[1], base.size[0]],
                    "flip": flip,
                    "chain": p.chain,
                    **{f"{s}_ms": _stats(times[s]) for s in ("network", "preprocess", "decode", "total")},
                }
                row["fps"] = round(1000.0 / row["total_ms"]["median"], 2)
                rows.append(row)
                print(_line(row), file=sys.stderr)
    return rows


def _line(row: dict[str, Any]) -> str:
    m = {s: row[f"{s}_ms"]["median"] for s in _STAGES}
    return (
        f"{row['backend']:<12} {row['precision']:<5} {row['model']:<12} {row['input'][0]:>4}x{row['input'][1]:<4} "
        f"{'flip' if row['flip'] else 'no flip':<8}{m['preprocess']:>8.1f}{m['network']:>9.1f}{m['decode']:>8.1f}"
        f"{m['total']:>8.1f} {row['total_ms']['min']:>7.1f}-{row['total_ms']['max']:<7.1f}{row['fps']:>7.1f}"
    )


def format_table(rows: list[dict[str, Any]]) -> str:
    """The terminal table: one row per backend, precision and flip setting (medians, ms)."""
    head = (
        f"{'backend':<12} {'prec':<5} {'model':<12} {'input':<9} {'flip':<8}{'prep':>8}{'network':>9}{'decode':>8}"
        f"{'total':>8} {'min-max':<15}{'fps':>7}"
    )
    chain = rows[0]["chain"] if rows else "original"
    return "\n".join([head, *(_line(r) for r in rows), f"(milliseconds, median of the runs; {chain} chain)"])
