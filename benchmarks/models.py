"""Forward latency of the LitePose presets on this machine (eager vs BatchNorm-folded).

Usage: python benchmarks/models.py [--threads N] [--runs R] [MODEL ...]
"""

from __future__ import annotations

import argparse

import torch
from _timing import timed

from litepose.models import create_model, fold_batchnorm, profile_model


def time_forward(model: torch.nn.Module, x: torch.Tensor, runs: int) -> float:
    with torch.inference_mode():
        return timed(lambda: model(x), runs)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("models", nargs="*", default=["litepose-xs", "litepose-s", "litepose-m", "litepose-l"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.runs} runs, batch 1")
    print(f"{'model':<14} {'input':>7} {'GMACs':>7} {'eager ms':>9} {'folded ms':>10}")
    for name in args.models:
        model = create_model(name).eval()
        size = model.input_size
        x = torch.randn(1, 3, size, size)
        eager = time_forward(model, x, args.runs)
        folded = time_forward(fold_batchnorm(model), x, args.runs)
        macs = profile_model(name).macs / 1e9
        print(f"{name:<14} {size:>7} {macs:>7.3f} {eager:>9.1f} {folded:>10.1f}")


if __name__ == "__main__":
    main()
