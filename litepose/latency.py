"""Whole-frame latency of every backend side by side: the library behind ``litepose benchmark``
(the CLI verb, :mod:`litepose.commands.benchmark`; the repo's measurement scripts are ``benchmarks/``).

One image goes through :class:`~litepose.Predictor` again and again, for each backend (eager
unfolded torch first, what the original runs; then folded channels-last torch, ONNX Runtime fp32
and int8, OpenVINO fp32, bf16 (on a CPU with AVX512-BF16 or AMX) and int8, NCNN and ExecuTorch
where installed), with and without flip test. Each row gives
per-stage milliseconds (preprocess, network, decode = merge + grouping + back-projection, and
their total) as median / min / max over the runs, and the frames per second of the median.

A variant that cannot be measured is never dropped silently: its runtime not installed, or its
export, session or run failing, it becomes a row with ``error`` (the cause, one line) instead of
timings, the line is printed at once, and the other variants are still measured. When nothing of
what was asked for (``backends``, or the exported file's backend) could be measured, the run is a
ValueError naming each backend and its cause.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .formats import BACKENDS, default_backend, export_modules, file_precision, format_for_backend, is_exported
from .runtime.auto import cpu_has_bf16

__all__ = ["VARIANTS", "available_variants", "plan_variants", "benchmark", "format_table"]

#: (backend, precision) in the order the rows come; ``torchscript`` only when asked for by name
#: (it runs the folded graph of ``torch``, exported to TorchScript on the fly).
VARIANTS = (
    ("torch-eager", "fp32"),
    ("torch", "fp32"),
    ("torchscript", "fp32"),
    ("onnxruntime", "fp32"),
    ("onnxruntime", "int8"),
    ("openvino", "fp32"),
    ("openvino", "bf16"),
    ("openvino", "int8"),
    ("ncnn", "fp32"),
    ("ncnn", "int8"),
    ("executorch", "fp32"),
    ("executorch", "int8"),
)
_ON_REQUEST = {"torchscript"}
_STAGES = ("preprocess", "network", "decode", "total")


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def plan_variants(backends: Sequence[str] | None = None) -> tuple[list[tuple[str, str]], list[dict[str, str]]]:
    """The variants :func:`benchmark` measures for ``backends`` (default: every one but those only made
    on request; eager torch always first, the baseline), and those it cannot run here, each as an
    error row ``{"backend", "precision", "error"}`` saying which package is missing."""
    unknown = sorted(set(backends or ()) - set(BACKENDS))
    if unknown:
        raise ValueError(f"unknown backend {unknown[0]!r}: choose one of {', '.join(BACKENDS)}")
    runnable: list[tuple[str, str]] = []
    missing: list[dict[str, str]] = []
    for b, prec in VARIANTS:
        if b != "torch-eager" and (b not in backends if backends else b in _ON_REQUEST):
            continue
        mods, extra = export_modules(b, prec)
        absent = [m for m in mods if not _installed(m)]
        if absent:
            why = f"not installed here: {', '.join(absent)} (pip install 'litepose[{extra}]')"
            missing.append({"backend": b, "precision": prec, "error": why})
        elif prec == "bf16" and not cpu_has_bf16():
            missing.append({"backend": b, "precision": prec, "error": "this CPU has neither AVX512-BF16 nor AMX"})
        else:
            runnable.append((b, prec))
    return runnable, missing


def available_variants(backends: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """The rows :func:`benchmark` can make here: every variant whose runtime is installed (int8 on
    OpenVINO also needs nncf, bf16 a CPU that computes it), restricted to ``backends`` (eager torch
    always comes first)."""
    return plan_variants(backends)[0]


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
    """What a Predictor takes for one variant: the torch model, or a file exported into ``tmp`` (bf16:
    the fp32 file, which OpenVINO computes in bf16; exported once for both rows)."""
    if backend in ("torch", "torch-eager"):
        return model
    from .export import export_model

    fmt = format_for_backend(backend)
    assert fmt is not None, backend  # every backend but the torch ones runs a format's files
    stored = file_precision(precision)
    path = tmp / f"{fmt.name}-{stored}{fmt.suffix}"
    if path.exists():
        return path
    print(f"exporting {fmt.name} {stored}", file=sys.stderr)
    return export_model(
        model, fmt.name, path, input_size=input_size, int8=stored == "int8", int8_images=int8_images
    )


def _cause(e: BaseException) -> str:
    """One line for a variant's failure: the message of an expected error, else its type too."""
    lines = str(e).strip().splitlines()
    text = lines[0][:300] if lines else ""
    if isinstance(e, (ValueError, OSError)) and text:
        return text
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _failed(backend: str, precision: str, why: str) -> dict[str, Any]:
    row = {"backend": backend, "precision": precision, "error": why}
    print(_line(row), file=sys.stderr)
    return row


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
    precision: str | None = None,
    **predictor_kwargs: Any,
) -> list[dict[str, Any]]:
    """Benchmark rows (the ``--json`` shape, docs/cli.md) for ``source``: a torch model (every
    variant of :func:`available_variants`, exported on the fly) or an exported file (its own
    backend only). ``image``: RGB uint8, default a generated 640x480 SynthPose image. ``precision``:
    only the variants of that precision (bf16: OpenVINO's fp32 file computed in bf16), else all."""
    from .runtime import named_export

    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be at least 1 and warmup at least 0, got {runs} and {warmup}")
    if image is None:
        from .data.synth import render_image

        image = render_image(0, 0, (640, 480)).image
    entry = named_export(source)
    if entry is not None:  # a weights name of an exported network: its verified file, on its backend
        from .models.weights import download_weights

        source, backends = download_weights(entry), list(backends or [entry.backend])
    exported = is_exported(source)
    rows: list[dict[str, Any]] = []
    if exported:
        variants: list[tuple[str, str]] = [(b, "") for b in (backends or [default_backend(source)])]
    else:
        if isinstance(source, (str, Path)):
            from .models import load_checkpoint

            source, _ = load_checkpoint(source)
        variants, missing = plan_variants(backends)
        if precision is not None:  # one precision asked for (bf16: OpenVINO's fp32 file computed in bf16)
            variants = [v for v in variants if v[1] == precision]
            missing = [r for r in missing if r["precision"] == precision]
        if backends and not any(b in backends for b, _ in variants):
            raise ValueError(
                "cannot benchmark here: " + "; ".join(f"{r['backend']} {r['precision']}: {r['error']}" for r in missing)
            )
        rows += [_failed(r["backend"], r["precision"], r["error"]) for r in missing]
    with tempfile.TemporaryDirectory(prefix="litepose-bench-") as tmp:
        for backend, prec in variants:
            try:
                net = source if exported else _open(source, backend, prec, Path(tmp), input_size, int8_images)
                kw = {**predictor_kwargs, "precision": "bf16"} if prec == "bf16" else predictor_kwargs
                rows += [_measure(net, backend, flip, image, runs, warmup, threads, input_size, kw)
                         for flip in flips]  # fmt: skip
            except Exception as e:
                if backend == "torch-eager":  # the baseline: its failure is the options' (or a bug), not a runtime's
                    raise
                rows.append(_failed(backend, prec, _cause(e)))
        if not exported and not backends and precision in (None, "fp32"):
            rows += _auto_rows(source, Path(tmp), image, runs, warmup, threads, input_size, flips, predictor_kwargs)
    asked = set(backends) if backends else {b for b, _ in variants}
    if not any("error" not in r and r["backend"] in asked for r in rows):
        failures = [f"{r['backend']} {r['precision']}".strip() + f": {r['error']}" for r in rows if "error" in r]
        raise ValueError("nothing measured: " + "; ".join(failures))
    order = {v: i for i, v in enumerate(VARIANTS)}
    return sorted(rows, key=lambda r: order.get((r["backend"], r["precision"]), len(order))) if not exported else rows


def _auto_rows(
    model: Any, tmp: Path, image: np.ndarray, runs: int, warmup: int, threads: int | None, input_size: int | None,
    flips: Sequence[bool], predictor_kwargs: dict[str, Any],
) -> list[dict[str, Any]]:  # fmt: skip
    """The rows of ``backend="auto"`` for a checkpoint (:func:`litepose.runtime.auto.for_checkpoint`):
    the backend it chooses here, measured on its own (``backend`` "auto", ``runs_on`` the choice)."""
    from .runtime.auto import for_checkpoint

    try:
        choice = for_checkpoint("fp32", predictor_kwargs.get("device", "auto"))
        net = _open(model, choice.backend, "fp32", tmp, input_size, 0)
        rows = [_measure(net, choice.backend, flip, image, runs, warmup, threads, input_size, predictor_kwargs,
                         label="auto") for flip in flips]  # fmt: skip
    except Exception as e:
        return [_failed("auto", "fp32", _cause(e))]
    return rows


def _measure(net: Any, backend: str, flip: bool, image: np.ndarray, runs: int, warmup: int, threads: int | None,
             input_size: int | None, predictor_kwargs: dict[str, Any], label: str = "") -> dict[str, Any]:  # fmt: skip
    """One measured row: ``net`` run by a Predictor on ``backend`` with or without flip test;
    ``label``: the row's backend name instead (``auto``, with ``runs_on`` the backend)."""
    from .predictor import Predictor

    p = Predictor(net, backend=backend, threads=threads, input_size=input_size, flip_test=flip, **predictor_kwargs)
    times = _time(p, image, runs, warmup)
    _xs, _g, base = p._preprocess([image])
    row = {
        "backend": label or p.backend.name,
        **({"runs_on": p.backend.name} if label else {}),
        "precision": p.backend.precision,
        "model": p.backend.info.arch,
        "input": [base.size[1], base.size[0]],
        "flip": flip,
        "chain": p.chain,
        **{f"{s}_ms": _stats(times[s]) for s in ("network", "preprocess", "decode", "total")},
    }
    row["fps"] = round(1000.0 / row["total_ms"]["median"], 2)
    print(_line(row), file=sys.stderr)
    return row


def _line(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"{row['backend']:<16} {row['precision']:<5} not measured: {row['error']}"
    if "runs_on" in row:
        row = {**row, "backend": f"auto:{row['runs_on']}"}
    m = {s: row[f"{s}_ms"]["median"] for s in _STAGES}
    return (
        f"{row['backend']:<16} {row['precision']:<5} {row['model']:<12} {row['input'][0]:>4}x{row['input'][1]:<4} "
        f"{'flip' if row['flip'] else 'no flip':<8}{m['preprocess']:>8.1f}{m['network']:>9.1f}{m['decode']:>8.1f}"
        f"{m['total']:>8.1f} {row['total_ms']['min']:>7.1f}-{row['total_ms']['max']:<7.1f}{row['fps']:>7.1f}"
    )


def format_table(rows: list[dict[str, Any]]) -> str:
    """The terminal table: one row per backend, precision and flip setting (medians, ms)."""
    head = (
        f"{'backend':<16} {'prec':<5} {'model':<12} {'input':<9} {'flip':<8}{'prep':>8}{'network':>9}{'decode':>8}"
        f"{'total':>8} {'min-max':<15}{'fps':>7}"
    )
    chain = next((r["chain"] for r in rows if "chain" in r), "original")
    return "\n".join([head, *(_line(r) for r in rows), f"(milliseconds, median of the runs; {chain} chain)"])
