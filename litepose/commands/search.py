"""``litepose search``: the architecture of a trained supernet with the best predicted AP under a budget.

``--budget 0.9GMACs`` / ``900MMACs`` / ``2.5Mparams`` / ``20ms``: the unit picks the cost (MACs,
params, or the latency measured on this machine with ``--backend`` / ``--threads``) unless
``--cost`` says otherwise. ``--build-table`` only measures the latency table (every distinct layer
of the space, once) and checks it against whole networks; run it alone when timings matter.
"""

from __future__ import annotations

import argparse
from typing import Any

HELP = "search a trained supernet for the best architecture within a MACs, params or latency budget"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from . import _options as o

    o.add_option(p, "--supernet", required=True)
    o.add_data_options(p, "training images: BatchNorm recalibration of each candidate", required=False)
    p.add_argument("--val-data", metavar="D", help="validation set scored for the predicted AP (default: --data)")
    p.add_argument(
        "--budget", required=True,
        help="the limit, with its unit: 0.9GMACs, 900MMACs, 2.5Mparams, 20ms (a bare number is refused)",
    )  # fmt: skip
    p.add_argument(
        "--cost", choices=["macs", "paper-macs", "params", "latency"], default=None,
        help="cost model (default: the budget's unit: MACs -> macs, params -> params, ms -> latency); "
        "paper-macs is the paper's count (ptflops 0.6.x convention)",
    )  # fmt: skip
    p.add_argument(
        "--space-config", default=None, metavar="CFG",
        help="training config whose supernet: section narrows the space (default: config.yaml beside "
        "--supernet, else the original's space)",
    )  # fmt: skip
    ints, floats = o.comma_list(int, "128,192"), o.comma_list(float, "1,0.5")
    p.add_argument("--sizes", type=ints, default=None, help="input sizes to search, e.g. 128,160,192")
    p.add_argument("--widths", type=floats, default=None, help="width multipliers, e.g. 1,0.75,0.5,0.25")
    p.add_argument("--kernels", type=ints, default=None, help="depthwise kernels (7, 5, 3; default: 7)")
    p.add_argument("--expansions", type=floats, default=None, help="block expansions (at most 6; default: 6)")
    p.add_argument("--population", type=int, default=10, help="population size (default 10)")
    p.add_argument("--generations", type=int, default=4, help="generations after the first (default 4)")
    p.add_argument("--parents", type=float, default=0.25, help="fraction kept as parents (default 0.25)")
    p.add_argument("--mutate-prob", type=float, default=0.1, help="per-gene mutation probability (default 0.1)")
    p.add_argument(
        "--mutation-ratio", type=float, default=0.5,
        help="fraction of children made by mutation, the rest by crossover (default 0.5)",
    )  # fmt: skip
    o.add_option(p, "--calib-images")
    o.add_option(p, "--val-images")
    p.add_argument(
        "--predictor-correction", default=None, metavar="FILE",
        help="rank by the predicted AP corrected per input size (correction.json of benchmarks/search_rank.py, "
        "fitted on fine-tuned networks; docs/search.md)",
    )  # fmt: skip
    p.add_argument("--batch-size", type=int, default=16)
    o.add_option(p, "--seed")
    o.add_option(p, "--resume")
    o.add_device_options(p)
    o.add_option(p, "--backend")  # the backend whose latency is measured (default torch)
    p.add_argument(
        "--latency-table", default=None, metavar="FILE",
        help="latency table JSON to read and extend (default: cached under $LITEPOSE_HOME/latency, "
        "per backend, threads and CPU)",
    )  # fmt: skip
    p.add_argument(
        "--build-table", action="store_true",
        help="only measure the latency table for the space and check it against whole networks, then stop",
    )  # fmt: skip
    p.add_argument("--check", type=int, default=12, help="networks timed whole to check the table (default 12)")
    o.add_output_option(p, "folder", "best_arch.json, candidates.csv, pareto.png, state.json", default="runs/search")
    o.add_json_option(p)


def _space(args: argparse.Namespace, supernet: object) -> object:
    from pathlib import Path

    from ..engine.config import SupernetCfg, TrainConfig
    from ..models.space import SearchSpace

    cfg_path = args.space_config
    if cfg_path is None:
        beside = Path(args.supernet).parent / "config.yaml"
        cfg_path = str(beside) if beside.is_file() else None
    section = TrainConfig.load(cfg_path).supernet if cfg_path else SupernetCfg()
    space = SearchSpace.from_config(section, supernet.max_spec)  # type: ignore[attr-defined]
    space = space.replace(sizes=args.sizes, widths=args.widths, kernels=args.kernels, expansions=args.expansions)
    # The test-time resize runs the short side at a multiple of 64 (as the original): a candidate at
    # another size would be scored at one size and costed at another.
    sizes = tuple(s for s in space.sizes if s % 64 == 0)
    if args.sizes is not None and sizes != space.sizes:
        raise ValueError(f"--sizes: search sizes are multiples of 64 (inference runs those), got {list(args.sizes)}")
    if not sizes:
        raise ValueError(f"the space's input sizes {list(space.sizes)} hold no multiple of 64 (inference runs those)")
    if sizes != space.sizes:
        import sys

        print(f"note: searching input sizes {list(sizes)} of the supernet's {list(space.sizes)} (inference runs "
              "multiples of 64)", file=sys.stderr)  # fmt: skip
    return space.replace(sizes=sizes), cfg_path


def run(args: argparse.Namespace) -> int:
    import torch

    from ..files import FolderLock
    from ..models import load_checkpoint
    from ..search.cost import check_backend, parse_budget
    from ._options import output_folder

    budget = parse_budget(args.budget, args.cost)
    if args.resume not in ("auto", "no"):
        raise ValueError(f"--resume {args.resume!r}: a search resumes from its --output folder: 'auto' or 'no'")
    # auto: torch, the one backend with per-layer latency tables so far
    args.backend = check_backend("torch" if args.backend in (None, "auto") else args.backend)
    out = output_folder(args.output)
    with FolderLock(out, "litepose search"):
        sup, info = load_checkpoint(args.supernet)
        if info["arch"] != "super":
            raise ValueError(f"{args.supernet}: is a {info['arch']} checkpoint, not a supernet")
        space, cfg_path = _space(args, sup)
        threads = args.threads or torch.get_num_threads()
        table = _latency_table(args, space, sup, threads) if budget.cost == "latency" or args.build_table else None
        if args.build_table:
            return _check_table(args, table, space, sup, threads, out)
        if args.data is None:
            raise ValueError("give --data: the training images that recalibrate each candidate's BatchNorm")
        return _search(args, budget, space, cfg_path, sup, table, threads, out)


def _latency_table(args: argparse.Namespace, space: Any, sup: Any, threads: int) -> Any:
    """The per-layer latency table of ``--backend`` at ``threads``, filled for ``space`` and its
    scale fitted where layers were timed now (or ``--build-table`` of a table without one)."""
    import random
    import sys

    from ..search.cost import CALIBRATION_NETWORKS, LatencyTable, network_latency, space_layers

    k = sup.num_joints
    table = LatencyTable(args.backend, threads, path=args.latency_table)
    n = table.fill(space_layers(space, k), progress=not args.json)
    print(f"latency table {table.path}: {len(table.entries)} layers ({n} measured now)", file=sys.stderr)
    # Fit the scale on networks the check does not use; a table built on another device keeps its own.
    if n or (args.build_table and not table.scale_networks):
        rng = random.Random(f"calibrate-{args.seed}")
        specs = [space.sample(rng) for _ in range(CALIBRATION_NETWORKS)]
        scale = table.calibrate(specs, k, lambda spec: network_latency(spec, k, args.backend, threads, sup))
        print(f"latency table scale {scale:.3f} (whole network / sum of layers, "
              f"median of {len(specs)} networks)", file=sys.stderr)  # fmt: skip
    return table


def _check_table(args: argparse.Namespace, table: Any, space: Any, sup: Any, threads: int, out: Any) -> int:
    """``--build-table``: the table's predictions against ``--check`` measured random networks,
    written to OUT/latency_check.json."""
    import json
    import random
    import statistics

    from ..files import atomic_write
    from ..search.cost import network_latency
    from ._options import emit

    k, rng, rows = sup.num_joints, random.Random(args.seed), []
    for _ in range(max(0, args.check)):
        spec = space.sample(rng)
        layers, meas = table.layer_sum(spec, k), network_latency(spec, k, args.backend, threads, sup)
        pred = table.scale * layers  # what table.latency(spec, k) returns
        rows.append({"arch": spec.to_json(), "predicted_ms": pred, "layer_sum_ms": layers,
                     "measured_ms": meas, "error": (pred - meas) / meas})  # fmt: skip
    errs = [abs(r["error"]) for r in rows]
    raw = [abs(r["layer_sum_ms"] - r["measured_ms"]) / r["measured_ms"] for r in rows]
    summary = {
        "table": str(table.path), "layers": len(table.entries), "backend": args.backend, "threads": threads,
        "cpu": table.cpu, "scale": table.scale, "scale_networks": table.scale_networks, "checked": len(rows),
        "median_abs_error": statistics.median(errs) if errs else None,
        "max_abs_error": max(errs) if errs else None,
        "median_abs_error_unscaled": statistics.median(raw) if raw else None, "checks": rows,
    }  # fmt: skip
    text = json.dumps(summary, indent=1)
    atomic_write(out / "latency_check.json", lambda tmp: tmp.write_text(text))
    med = summary["median_abs_error"]
    emit(args, summary, f"latency table: {len(table.entries)} layers, {len(rows)} networks checked, "
         f"median error {100 * med:.1f}%" if med is not None else "latency table built")  # fmt: skip
    return 0


def _search(
    args: argparse.Namespace, budget: Any, space: Any, cfg_path: Any, sup: Any, table: Any, threads: int, out: Any
) -> int:
    """The evolutionary search itself (resumable in OUT), its outputs and its summary."""
    import sys
    from pathlib import Path

    from ..device import pick_device
    from ..search.correction import PredictorCorrection
    from ..search.cost import cost_of, format_cost
    from ..search.evolution import (
        AccuracyPredictor,
        SearchSettings,
        SearchStateError,
        arch_key,
        evolve,
        preset_marks,
        write_outputs,
    )
    from ._options import emit

    k = sup.num_joints
    correction = None
    if args.predictor_correction:
        correction = PredictorCorrection.load(args.predictor_correction)
        correction.check_sizes(space.sizes, where=args.predictor_correction)
    calib = 32 if args.calib_images is None else args.calib_images
    val_images = 40 if args.val_images is None else args.val_images
    device = pick_device(args.device)
    sup.to(device)
    predictor = AccuracyPredictor(
        sup, args.data, args.val_data or args.data, images=args.images, calib_images=calib,
        val_images=val_images, batch_size=args.batch_size, device=device, seed=args.seed, correction=correction,
    )  # fmt: skip

    def cost(spec: object) -> float:
        return cost_of(spec, budget.cost, k, table)  # type: ignore[arg-type]

    settings = SearchSettings(args.population, args.generations, args.parents, args.mutate_prob,
                              args.mutation_ratio, args.seed)  # fmt: skip
    latency = budget.cost == "latency"
    identity = {
        "supernet": str(Path(args.supernet).resolve()), "data": str(Path(args.data).resolve()),
        "val_data": str(Path(args.val_data or args.data).resolve()), "calib_images": calib,
        "val_images": val_images, "batch_size": args.batch_size,
        "backend": args.backend if latency else None, "threads": threads if latency else None,
        **({"correction": correction.to_json()} if correction else {}),
    }  # fmt: skip
    try:
        result = evolve(space, budget, predictor, cost, settings, out, identity=identity,
                        resume=args.resume == "auto", progress=not args.json,
                        log=lambda s: print(s, file=sys.stderr))  # fmt: skip
    except SearchStateError as e:
        raise SearchStateError(f"{e}: another --output, or --resume no") from None
    result.extra["corrected"] = correction is not None  # the plot says what its AP axis is
    marks = preset_marks(space, cost, predictor, budget, output=out)
    files = write_outputs(result, space, out, k, marks, table)
    summary = {
        "best_arch": result.best.to_json(), "best_predicted_ap": result.best_ap, "best_cost": result.best_cost,
        "cost": budget.cost, "budget": budget.value, "budget_text": budget.text,
        "budget_used": result.best_cost / budget.value, "candidates": len(result.candidates),
        "evaluated_now": result.evaluated_now, "resumed": result.resumed,
        "space": {k2: v for k2, v in space.as_dict().items() if k2 != "max_spec"}, "space_config": cfg_path,
        "presets": marks, "history": result.history, "files": files,
    }  # fmt: skip
    emit(
        args,
        summary,
        f"{len(result.candidates)} candidates ({result.evaluated_now} evaluated now) -> "
        f"{', '.join(files.values())}\n"
        f"best: {arch_key(result.best)} ({out / 'best_arch.json'}): {format_cost(result.best_cost, budget.cost)} "
        f"of {budget.text} ({100 * result.best_cost / budget.value:.0f}%), predicted AP {result.best_ap:.4f}",
    )
    return 0
