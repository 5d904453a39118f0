"""Does the search's accuracy predictor rank architectures? Kendall tau and Spearman rho between the
AP it predicts (the supernet run as the candidate, BatchNorm recalibrated, AP on a validation
subset: what ``litepose search`` ranks by) and the AP of each candidate after the same fine-tune.

The architectures (``--n``, seeded) are spread over the supernet's space: each input size the
search takes (multiples of 64) gets architectures at every width level, each layer's multiplier
drawn from its level's neighbourhood, so small, middle and large networks are all there (not only
presets). ``--arch`` (repeatable: a preset name or an architecture JSON) adds fixed ones: the
searched network and the presets of docs/search.md's comparison.

Each architecture: predicted AP -> ``transfer`` (BatchNorm recalibrated) -> ``litepose train``
with the SynthPose recipe (configs/synthpose_xs.yaml, ``--pretrained`` the transferred subnet with
its head) for ``--steps`` optimisation steps (equal steps: the architecture, not its speed, makes
the difference) or ``--minutes`` (equal time) -> AP on the first ``--final-val-images`` of
``--val-data``. Every result is cached in OUTPUT/rank.json as it lands; run the same command again
to resume (a fine-tune cut short resumes from its last checkpoint). The end prints the table,
Kendall tau and Spearman rho with p-values over all architectures and within each input size, and
the predictor's error, writes them to rank.json, and draws rank.png (predicted against fine-tuned
AP; fine-tuned AP against measured latency with the Pareto front and the ``--arch`` networks named).

Usage: python benchmarks/search_rank.py --supernet runs/super/last.pth --data TRAIN --val-data VAL \
           [--n 15] [--steps 300 | --minutes 10] [--arch litepose-xs ...] [--output runs/search_rank]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def spread_archs(space: Any, n: int, seed: int) -> list[Any]:
    """``n`` distinct architectures over ``space``: input sizes and width levels in turn, each layer's
    width multiplier drawn from its level and (with 4 or more multipliers) the levels beside it, so
    the draws run from the smallest networks to the largest (seeded)."""
    rng = random.Random(seed)
    widths = sorted(space.widths)
    cells = [(size, level) for level in range(len(widths)) for size in sorted(space.sizes)]
    specs: list[Any] = []
    tries = 0
    while len(specs) < n:
        size, level = cells[len(specs) % len(cells)] if tries < 50 * n else rng.choice(cells)
        radius = 1 if len(widths) >= 4 else 0  # with 2-3 multipliers, a level is one multiplier
        near = tuple(widths[max(0, level - radius) : level + radius + 1])
        spec = space.replace(sizes=(size,), widths=near).sample(rng)
        tries += 1
        if spec not in specs:
            specs.append(spec)
    return specs


def _fine_tune(spec: Any, sub: Path, run: Path, args: argparse.Namespace) -> tuple[float, int]:
    """Fine-tune the transferred ``sub`` with the SynthPose recipe; its final AP and its steps."""
    arch_path = run.parent / f"{run.name}.arch.json"
    arch_path.write_text(json.dumps(spec.to_json()))
    if args.minutes:
        length = [f"train.time_limit_min={args.minutes}", "train.epochs=1000", "train.max_steps_per_epoch=20"]
    else:
        per_epoch = min(args.steps, 50)
        if args.steps % per_epoch:
            raise SystemExit(f"--steps {args.steps}: use a multiple of 50 (or fewer than 50)")
        length = ["train.time_limit_min=null", f"train.epochs={args.steps // per_epoch}",
                  f"train.max_steps_per_epoch={per_epoch}"]  # fmt: skip
    cmd = [sys.executable, "-m", "litepose", "train", "--config", str(ROOT / "configs" / "synthpose_xs.yaml"),
           "--output", str(run), "--pretrained", str(sub), "model.pretrained_head=true", f"model.arch={arch_path}",
           "model.input_size=null", f"data.train={args.data}", f"data.val={args.val_data}", "data.synthpose=null",
           f"val.max_images={args.final_val_images}", "val.every=0", f"train.batch_size={args.batch_size}",
           f"train.seed={args.seed}", *length]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    proc = subprocess.run([*cmd, "--threads", str(args.threads)], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"fine-tune of {run.name} failed:\n{proc.stderr[-2000:]}")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    aps = [r["ap"] for r in rows if "ap" in r]
    if not aps:
        raise SystemExit(f"{run}: the fine-tune recorded no AP")
    return float(aps[-1]), int(max(r.get("step", 0) for r in rows))


def correlations(pred: list[float], real: list[float]) -> dict[str, float | int]:
    """Kendall tau and Spearman rho of two lists, with their p-values (NaN below 3 items)."""
    from scipy.stats import kendalltau, spearmanr

    if len(pred) < 3 or len(set(pred)) < 2 or len(set(real)) < 2:  # undefined: too few, or constant
        nan = float("nan")
        return {"n": len(pred), "kendall_tau": nan, "kendall_p": nan, "spearman_rho": nan, "spearman_p": nan}
    tau, tp = kendalltau(pred, real)
    rho, rp = spearmanr(pred, real)
    return {"n": len(pred), "kendall_tau": float(tau), "kendall_p": float(tp),
            "spearman_rho": float(rho), "spearman_p": float(rp)}  # fmt: skip


def report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The ranking figures of ``rows``: overall, within each input size, and the predictor's error."""
    import numpy as np

    pred = [r["predicted_ap"] for r in rows]
    real = [r["finetuned_ap"] for r in rows]
    out: dict[str, Any] = {"all": correlations(pred, real), "by_size": {}}
    for size in sorted({r["input_size"] for r in rows}):
        some = [r for r in rows if r["input_size"] == size]
        out["by_size"][str(size)] = correlations([r["predicted_ap"] for r in some], [r["finetuned_ap"] for r in some])
    p, y = np.array(pred), np.array(real)
    out["mean_abs_error"] = float(np.abs(p - y).mean()) if rows else float("nan")
    if len(rows) >= 3:  # the error left once the predictor's scale is fitted (leave-one-out linear fit)
        errs = []
        for i in range(len(rows)):
            keep = np.arange(len(rows)) != i
            if np.ptp(p[keep]) == 0:  # constant predictions: no line to fit
                errs.append(float("nan"))
                continue
            a, b = np.polyfit(p[keep], y[keep], 1)
            errs.append(abs(a * p[i] + b - y[i]))
        out["loo_linear_abs_error"] = float(np.mean(errs))
    return out


def corrected_figures(rows: list[dict[str, Any]], correction: str | None, out: Path) -> dict[str, Any]:
    """The ranking after the per-size correction (litepose.search.correction): leave-one-out on these
    rows, a correction fitted elsewhere (``--correction``: a held-out test), and the one fitted on all
    of them, written to OUT/correction.json for ``litepose search --predictor-correction``."""
    from litepose.search.correction import PredictorCorrection, fit_correction, leave_one_out

    pairs = [(r["input_size"], r["predicted_ap"], r["finetuned_ap"]) for r in rows]
    figures: dict[str, Any] = {}
    loo = {r["key"]: v for r, v in zip(rows, leave_one_out(pairs)) if v is not None}
    if len(loo) >= 3:
        figures["loo"] = report([dict(r, predicted_ap=loo[r["key"]]) for r in rows if r["key"] in loo])
        figures["loo"]["values"] = loo
    if correction:
        c = PredictorCorrection.load(correction)
        held = {r["key"]: c(r["input_size"], r["predicted_ap"]) for r in rows if r["input_size"] in c.offsets}
        figures["held_out"] = report([dict(r, predicted_ap=held[r["key"]]) for r in rows if r["key"] in held])
        figures["held_out"]["values"] = held
        figures["held_out"]["correction"] = c.to_json()
    try:
        fitted = fit_correction(pairs, source={"rows": [r["key"] for r in rows]})
    except ValueError:
        return figures
    fitted.save(out / "correction.json")
    figures["correction"] = fitted.to_json()
    return figures


def _table(rows: list[dict[str, Any]]) -> str:
    head = f"{'architecture':<44} {'GMACs':>6} {'ms':>7} {'predicted':>9} {'fine-tuned':>10}"
    lines = [head]
    for r in sorted(rows, key=lambda r: -r["predicted_ap"]):
        ms = f"{r['latency_ms']:.1f}" if r.get("latency_ms") else "-"
        lines.append(f"{r['key']:<44} {r['gmacs']:>6.3f} {ms:>7} {r['predicted_ap']:>9.4f} {r['finetuned_ap']:>10.4f}")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], figures: dict[str, Any], path: Path, budget_ms: float | None = None) -> None:
    """rank.png: predicted against fine-tuned AP (the ranking), and fine-tuned AP against measured
    latency with its Pareto front (the spread architectures as dots, the ``--arch`` ones named)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from litepose.search.evolution import pareto_front

    # the corrected predictions, a middle panel when there are some: by a correction fitted on other
    # architectures (--correction, the held-out test) when given, else leave one out
    held_out = "held_out" in figures
    loo = figures.get("held_out" if held_out else "loo", {}).get("values")
    fig, axes = plt.subplots(1, 3 if loo else 2, figsize=(18 if loo else 12, 4.8), dpi=120)
    left, right = axes[0], axes[-1]
    sizes = sorted({r["input_size"] for r in rows})
    colours = dict(zip(sizes, ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown"]))
    for size in sizes:
        some = [r for r in rows if r["input_size"] == size and not r.get("label")]
        left.scatter([r["predicted_ap"] for r in some], [r["finetuned_ap"] for r in some], c=colours[size],
                     s=22, label=f"input {size}")  # fmt: skip
    a = figures["all"]
    left.set_title(f"Kendall tau {a['kendall_tau']:.2f} (p {a['kendall_p']:.2g}), "
                   f"Spearman rho {a['spearman_rho']:.2f}, {a['n']} architectures")  # fmt: skip
    left.set_xlabel("predicted AP (supernet subnet, BatchNorm recalibrated)")
    left.set_ylabel("AP after the same fine-tune")
    if loo:
        mid = axes[1]
        for size in sizes:
            some = [r for r in rows if r["input_size"] == size and r["key"] in loo and not r.get("label")]
            mid.scatter([loo[r["key"]] for r in some], [r["finetuned_ap"] for r in some], c=colours[size], s=22,
                        label=f"input {size}")  # fmt: skip
        c = figures["held_out" if held_out else "loo"]["all"]
        how = "held out" if held_out else "leave one out"
        mid.set_title(f"corrected ({how}): tau {c['kendall_tau']:.2f} (p {c['kendall_p']:.2g}), "
                      f"rho {c['spearman_rho']:.2f}")  # fmt: skip
        fit_on = "other architectures (--correction)" if held_out else "the other architectures"
        mid.set_xlabel(f"predicted AP, corrected per input size by a fit on {fit_on}")
        mid.set_ylabel("AP after the same fine-tune")
    timed = [r for r in rows if r.get("latency_ms")]
    for size in sizes:
        some = [r for r in timed if r["input_size"] == size and not r.get("label")]
        right.scatter([r["latency_ms"] for r in some], [r["finetuned_ap"] for r in some], c=colours[size], s=22)
    for r in timed:
        if r.get("label"):
            right.scatter([r["latency_ms"]], [r["finetuned_ap"]], marker="D", s=46, c="tab:red", zorder=4)
            right.annotate(r["label"], (r["latency_ms"], r["finetuned_ap"]), textcoords="offset points",
                           xytext=(5, 4), color="tab:red", fontsize=8)  # fmt: skip
    front = pareto_front([(r["latency_ms"], r["finetuned_ap"]) for r in timed])
    if front:
        right.plot([p[0] for p in front], [p[1] for p in front], "-", c="0.5", lw=1, label="Pareto front")
    if budget_ms:
        right.axvline(budget_ms, c="tab:red", ls="--", lw=1, label=f"budget {budget_ms:.1f} ms")
    right.set_xlabel("measured latency (ms, torch, BatchNorm folded)")
    right.set_ylabel("AP after the same fine-tune")
    right.set_title("fine-tuned AP against latency")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    os.replace(tmp, path)


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--supernet", required=True)
    ap.add_argument("--data", required=True, help="training images (SynthPose folder or COCO JSON)")
    ap.add_argument("--val-data", required=True, help="validation set (SynthPose folder or COCO JSON)")
    ap.add_argument("--n", type=int, default=15, help="architectures spread over the space (0: only --arch)")
    ap.add_argument("--arch", action="append", default=[], help="also this architecture (preset or JSON)")
    ap.add_argument("--steps", type=int, default=300, help="fine-tune steps per architecture")
    ap.add_argument("--minutes", type=float, default=None, help="fine-tune minutes instead of steps")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--calib-images", type=int, default=32, help="predictor: as litepose search's default")
    ap.add_argument("--val-images", type=int, default=40, help="predictor: as litepose search's default")
    ap.add_argument("--final-val-images", type=int, default=200, help="val images scored after fine-tuning")
    ap.add_argument(
        "--wide-val-images",
        type=int,
        default=0,
        help="also the predictor on this many val images (its figures reported beside; 0: off)",
    )
    ap.add_argument(
        "--latency-threads",
        type=int,
        default=2,
        help="threads of the measured latency, timed at the end for every architecture (0: skip)",
    )
    ap.add_argument("--threads", type=int, default=2, help="threads of prediction and fine-tuning")
    ap.add_argument("--budget-ms", type=float, default=None, help="a latency budget to draw on the plot")
    ap.add_argument(
        "--correction",
        default=None,
        help="also rank by this correction.json (fitted by another run): the held-out test",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", default="runs/search_rank")
    args = ap.parse_args(argv)

    import torch

    from litepose.engine.config import SupernetCfg, TrainConfig
    from litepose.engine.transfer import transfer
    from litepose.models import load_checkpoint
    from litepose.models.space import SearchSpace
    from litepose.models.spec import resolve_spec
    from litepose.search.cost import cost_of, network_latency
    from litepose.search.evolution import AccuracyPredictor, arch_key

    torch.set_num_threads(args.threads)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    sup, _ = load_checkpoint(args.supernet)
    cfg = Path(args.supernet).parent / "config.yaml"
    section = TrainConfig.load(str(cfg)).supernet if cfg.is_file() else SupernetCfg()
    space = SearchSpace.from_config(section, sup.max_spec)
    space = space.replace(sizes=tuple(s for s in space.sizes if s % 64 == 0))
    specs = spread_archs(space, args.n, args.seed) + [resolve_spec(a)[1] for a in args.arch]
    labels = {arch_key(resolve_spec(a)[1]): Path(a).stem.replace("litepose-", "").upper() for a in args.arch}
    protocol = {"steps": None if args.minutes else args.steps, "minutes": args.minutes, "batch_size": args.batch_size,
                "calib_images": args.calib_images, "val_images": args.val_images,
                "final_val_images": args.final_val_images, "wide_val_images": args.wide_val_images,
                "supernet": str(Path(args.supernet).resolve()),
                "seed": args.seed}  # fmt: skip
    state_path = out / "rank.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {"protocol": protocol, "rows": []}
    if state["protocol"] != protocol:
        raise SystemExit(f"{state_path} was written with {state['protocol']}: another --output, or delete it")
    rows = {r["key"]: r for r in state["rows"]}
    predictor = None
    for i, spec in enumerate(specs, 1):
        key = arch_key(spec)
        if key in rows:
            continue
        print(f"[{i}/{len(specs)}] {key}", flush=True)
        if predictor is None:
            predictor = AccuracyPredictor(sup, args.data, args.val_data, calib_images=args.calib_images,
                                          val_images=max(args.val_images, args.wide_val_images))  # fmt: skip
        t0 = time.time()
        scores = predictor.scores(spec, (args.val_images,))
        pred_ap = scores[min(scores)]  # the first --val-images: what litepose search ranks by
        t_pred = time.time() - t0
        sub = out / f"{key}.pth"
        if not sub.is_file():
            transfer(sup, spec, sub, data=args.data, num_images=256, device="cpu")
        t0 = time.time()
        ft_ap, steps = _fine_tune(spec, sub, out / f"ft-{key}", args)
        row = {"key": key, "input_size": spec.input_size, "gmacs": cost_of(spec, "macs", sup.num_joints) / 1e9,
               "predicted_ap": pred_ap, "finetuned_ap": ft_ap, "steps": steps, "predict_seconds": t_pred,
               "finetune_minutes": (time.time() - t0) / 60, "arch": spec.to_json(),
               "fixed": i > args.n, "label": labels.get(key)}  # fmt: skip
        if args.wide_val_images > args.val_images:
            row["predicted_ap_wide"] = scores[max(scores)]
        rows[key] = row
        print(f"  predicted {pred_ap:.4f}, fine-tuned {ft_ap:.4f} after {steps} steps", flush=True)
        _write(state_path, {"protocol": protocol, "rows": list(rows.values())})
    done = [rows[arch_key(s)] for s in specs]
    if args.latency_threads:  # timed together once every fine-tune is over: one window, no training beside them
        for spec, row in zip(specs, done):
            if not row.get("latency_ms"):
                print(f"timing {row['key']}", flush=True)
                row["latency_ms"] = network_latency(spec, sup.num_joints, "torch", args.latency_threads, supernet=sup)
                _write(state_path, {"protocol": protocol, "rows": list(rows.values())})
    spread = [r for r in done if not r["fixed"]] or done
    figures = report(spread)
    figures.update(corrected_figures(spread, args.correction, out))
    if all("predicted_ap_wide" in r for r in spread):
        figures["wide"] = report([dict(r, predicted_ap=r["predicted_ap_wide"]) for r in spread])
    _write(state_path, {"protocol": protocol, "rows": list(rows.values()), "report": figures})
    plot(done, figures, out / "rank.png", args.budget_ms)
    print(_table(done))
    a = figures["all"]
    print(f"Kendall tau {a['kendall_tau']:.3f} (p {a['kendall_p']:.3g}), Spearman rho {a['spearman_rho']:.3f} "
          f"(p {a['spearman_p']:.3g}) over {a['n']} architectures; "
          f"predictor error {figures['mean_abs_error']:.4f} AP")  # fmt: skip
    for size, c in figures["by_size"].items():
        print(f"  input {size}: tau {c['kendall_tau']:.3f} (p {c['kendall_p']:.3g}) over {c['n']}")
    for name, what in (
        ("loo", "corrected, each by a fit on the others (leave one out)"),
        ("held_out", f"corrected by {args.correction} (fitted on other architectures)"),
    ):
        if name in figures:
            c = figures[name]["all"]
            print(
                f"predictor {what}: Kendall tau {c['kendall_tau']:.3f} (p {c['kendall_p']:.3g}), "
                f"Spearman rho {c['spearman_rho']:.3f} over {c['n']}"
            )
    if "correction" in figures:
        print(f"correction fitted on these {figures['correction']['pairs']} pairs -> {out / 'correction.json'}")
    if "wide" in figures:
        w = figures["wide"]["all"]
        print(
            f"predictor on {args.wide_val_images} val images: Kendall tau {w['kendall_tau']:.3f} "
            f"(p {w['kendall_p']:.3g}), Spearman rho {w['spearman_rho']:.3f} (p {w['spearman_p']:.3g})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
