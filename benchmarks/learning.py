"""Learning benchmark: LitePose-XS from scratch on SynthPose, AP against wall-clock minutes.

The goal (issue 5): XS reaches AP >= 0.50 on SynthPose val (`litepose synth --num-images 500 --seed 1`,
default settings) within 30 minutes on a 2-core CPU. The recipe is configs/synthpose_xs.yaml
(training data: SynthPose seed 0, disjoint from val; splits generated on first use). Prints the
curve (minutes, epoch, loss, AP, AP50; validated without flip test, for speed), then the final
score of best.pth with flip test (as `litepose demo` and the original evaluate; the run's final/
folder holds its metrics.json); the run folder holds metrics.jsonl and curves.png.

Usage: python benchmarks/learning.py [--minutes 30] [--output runs/learning] [KEY=VALUE ...]
e.g.   python benchmarks/learning.py model.input_size=192 train.batch_size=8
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from litepose.engine.config import TrainConfig
from litepose.engine.trainer import Trainer
from litepose.eval import evaluate
from litepose.models import load_checkpoint
from litepose.predictor import Predictor

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "synthpose_xs.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--data", default="runs/learning-data", help="where the SynthPose splits live")
    ap.add_argument("--output", default="runs/learning")
    ap.add_argument("--no-final", action="store_true", help="skip the final flip-test evaluation of best.pth")
    args = ap.parse_args()
    data = Path(args.data)
    overrides = [
        f"train.time_limit_min={args.minutes}",
        "train.epochs=1000",
        f"data.train={data / 'train'}",
        f"data.val={data / 'val'}",
        *args.overrides,
    ]
    cfg = TrainConfig.load(CONFIG, overrides)
    summary = Trainer(cfg, args.output, resume="auto").fit()
    rows = [json.loads(line) for line in (Path(args.output) / "metrics.jsonl").read_text().splitlines()]
    print(f"\nXS from scratch on SynthPose, input {cfg.model.input_size}, batch {cfg.train.batch_size}")
    print(f"{'minutes':>8} {'epoch':>6} {'loss':>9} {'AP':>6} {'AP50':>6}")
    for r in rows:
        if "ap" in r:
            print(f"{r['minutes']:>8.1f} {r['epoch']:>6} {r['loss']:>9.5f} {r['ap']:>6.3f} {r['ap50']:>6.3f}")
    best = summary["best_ap"]
    print(f"best AP during training (no flip) {best if best is not None else float('nan'):.3f}")
    if not args.no_final:
        # The final score as the demo and the original evaluate: best.pth with flip test.
        model, _ = load_checkpoint(Path(args.output) / "best.pth")
        predictor = Predictor(model, input_size=cfg.model.input_size, flip_test=True, device="cpu")
        m = evaluate(predictor, data / "val", output=Path(args.output) / "final", progress=True)
        print(f"best.pth with flip test: AP {m['AP']:.3f}  AP50 {m['AP50']:.3f}  AR {m['AR']:.3f}")
    print(f"curves: {args.output}/curves.png")


if __name__ == "__main__":
    main()
