"""How well the search's accuracy predictor ranks architectures: Kendall tau between the predicted AP
(the supernet as the candidate, BatchNorm recalibrated, AP on a validation subset: what
``litepose search`` ranks by) and the AP after a short fine-tune of each candidate.

Draws ``--n`` random architectures of the search space within ``--budget`` (seeded), predicts
their AP with the search's predictor and settings, then for each: ``transfer`` (BatchNorm
recalibrated) -> fine-tune for ``--minutes`` with the SynthPose recipe (configs/synthpose_xs.yaml,
``--pretrained`` the transferred subnet with its head, as docs/search.md's chain) -> AP on ``--val-data``
(``--final-val-images`` of it). Writes rank.json in --output and prints tau and its p-value.

Usage: python benchmarks/search_rank.py --supernet runs/super/last.pth --data TRAIN --val-data VAL \
           [--budget 0.9GMACs] [--n 6] [--minutes 3] [--output runs/search_rank]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def subset_annotations(val: Path, n: int) -> Path:
    """A COCO JSON of the first ``n`` images of the SynthPose folder ``val``, written beside its images."""
    if n <= 0:
        return val / "annotations.json"
    path = val / f"annotations_first{n}.json"
    if not path.exists():
        data = json.loads((val / "annotations.json").read_text())
        keep = {im["id"] for im in data["images"][:n]}
        data["images"] = [im for im in data["images"] if im["id"] in keep]
        data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
        path.write_text(json.dumps(data))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--supernet", required=True)
    ap.add_argument("--data", required=True, help="training images (SynthPose folder or COCO JSON)")
    ap.add_argument("--val-data", required=True, help="SynthPose val folder")
    ap.add_argument("--budget", default="0.9GMACs")
    ap.add_argument("--n", type=int, default=6)
    ap.add_argument("--minutes", type=float, default=3.0, help="fine-tune minutes per candidate")
    ap.add_argument("--calib-images", type=int, default=32, help="as litepose search's default")
    ap.add_argument("--val-images", type=int, default=40, help="as litepose search's default")
    ap.add_argument("--final-val-images", type=int, default=200, help="val images scored after fine-tuning")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", default="runs/search_rank")
    args = ap.parse_args()

    import torch
    from scipy.stats import kendalltau

    from litepose.engine.transfer import transfer
    from litepose.models import load_checkpoint
    from litepose.models.space import SearchSpace
    from litepose.search.cost import cost_of, parse_budget
    from litepose.search.evolution import AccuracyPredictor, arch_key

    torch.set_num_threads(1)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    budget = parse_budget(args.budget)
    sup, _ = load_checkpoint(args.supernet)
    cfg = Path(args.supernet).parent / "config.yaml"
    from litepose.engine.config import SupernetCfg, TrainConfig

    section = TrainConfig.load(str(cfg)).supernet if cfg.is_file() else SupernetCfg()
    space = SearchSpace.from_config(section, sup.max_spec)
    space = space.replace(sizes=tuple(s for s in space.sizes if s % 64 == 0))
    rng = random.Random(args.seed)
    specs = []
    while len(specs) < args.n:
        s = space.sample(rng)
        if budget.allows(cost_of(s, budget.cost, sup.num_joints)) and s not in specs:
            specs.append(s)
    predictor = AccuracyPredictor(sup, args.data, args.val_data, calib_images=args.calib_images,
                                  val_images=args.val_images)  # fmt: skip
    val_json = subset_annotations(Path(args.val_data), args.final_val_images)
    state_path = out / "rank.json"
    rows = json.loads(state_path.read_text())["rows"] if state_path.is_file() else []
    done = {r["key"] for r in rows}
    for spec in specs:
        key = arch_key(spec)
        if key in done:
            continue
        t0 = time.time()
        pred_ap = predictor(spec)
        t_pred = time.time() - t0
        arch_path = out / f"{key}.json"
        arch_path.write_text(json.dumps(spec.to_json()))
        sub = out / f"{key}.pth"
        transfer(sup, spec, sub, data=args.data, num_images=256, device="cpu")
        run = out / f"ft-{key}"
        cmd = [sys.executable, "-m", "litepose", "train", "--config", str(ROOT / "configs" / "synthpose_xs.yaml"),
               "--output", str(run), "--pretrained", str(sub), "model.pretrained_head=true", f"model.arch={arch_path}",
               "model.input_size=null",
               f"data.train={args.data}", f"data.val={val_json}", "data.synthpose=null",
               f"train.time_limit_min={args.minutes}", "train.max_steps_per_epoch=20", "val.every=0"]  # fmt: skip
        import subprocess

        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        ft_ap = max(m.get("ap", -1.0) for m in metrics)
        rows.append({"key": key, "input_size": spec.input_size, "cost": cost_of(spec, budget.cost, sup.num_joints),
                     "predicted_ap": pred_ap, "finetuned_ap": ft_ap, "predict_seconds": t_pred,
                     "arch": spec.to_json()})  # fmt: skip
        print(f"{key}: predicted {pred_ap:.4f}, fine-tuned {ft_ap:.4f} ({t_pred:.0f} s to predict)", flush=True)
        state_path.write_text(json.dumps({"rows": rows}, indent=1))
    tau, p = kendalltau([r["predicted_ap"] for r in rows], [r["finetuned_ap"] for r in rows])
    summary = {"rows": rows, "kendall_tau": float(tau), "p_value": float(p), "minutes": args.minutes,
               "budget": args.budget, "calib_images": args.calib_images, "val_images": args.val_images,
               "final_val_images": args.final_val_images}  # fmt: skip
    state_path.write_text(json.dumps(summary, indent=1))
    print(f"Kendall tau {tau:.3f} (p = {p:.3f}) over {len(rows)} architectures")


if __name__ == "__main__":
    main()
