"""Depthwise-conv gradients on this machine: aten (oneDNN) against litepose's C kernels.

Times, per shape of LitePose-XS training at 128 px (batch 16, channels_last), the weight
gradient and the input gradient of a depthwise conv through ``aten::convolution_backward`` and
through ``litepose.models.fastconv``, and checks that they agree. The input gradient is aten's
for shapes the C kernel does not take (stride 2, kernels 3 and 5): same figure twice.

Usage: python benchmarks/fastconv.py [--threads 2] [--runs 10] [--batch 16]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from _timing import timed

from litepose.models import fastconv

# (channels, height = width, kernel, stride): the depthwise convs of XS at 128 px
SHAPES = [
    (96, 32, 7, 1),
    (96, 64, 7, 2),
    (192, 16, 7, 1),
    (288, 8, 7, 1),
    (480, 8, 7, 1),
    (24, 64, 5, 1),
    (32, 64, 3, 1),
]


def time_shape(n: int, c: int, hw: int, k: int, s: int, runs: int) -> list[tuple[float, float]]:
    """(median, min) ms of aten's and the kernel's weight and input gradients, checked equal."""
    x = torch.randn(n, c, hw, hw).contiguous(memory_format=torch.channels_last)
    w = torch.randn(c, 1, k, k) / k
    g = torch.randn_like(F.conv2d(x, w, None, s, k // 2, 1, c))

    def aten(mask: list[bool]) -> tuple[torch.Tensor, ...]:
        return torch.ops.aten.convolution_backward(g, x, w, None, [s, s], [k // 2] * 2, [1, 1], False, [0, 0], c, mask)

    for fast, ref in (
        (fastconv.depthwise_weight_grad(x, g, k, s), aten([False, True, False])[1]),
        (fastconv.depthwise_input_grad(g, x, w, s), aten([True, False, False])[0]),
    ):
        torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-5 * ref.abs().max().item())
    return [
        timed(lambda: aten([False, True, False]), runs),
        timed(lambda: fastconv.depthwise_weight_grad(x, g, k, s), runs),
        timed(lambda: aten([True, False, False]), runs),
        timed(lambda: fastconv.depthwise_input_grad(g, x, w, s), runs),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not fastconv.fast_conv_available():
        raise SystemExit("the fast depthwise kernel is unavailable here (no C compiler, or LITEPOSE_FAST_CONV=0)")
    print(f"torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}, {args.threads} threads, ", end="")
    print(f"batch {args.batch}, channels_last; median (min) ms of {args.runs} runs")
    print(
        f"{'input':>18} {'k':>2} {'s':>2} {'wgrad aten':>14} {'wgrad fast':>14} {'dgrad aten':>14} {'dgrad fast':>14}"
    )
    for c, hw, k, s in SHAPES:
        cells = time_shape(args.batch, c, hw, k, s, args.runs)
        text = " ".join(f"{f'{med:.2f} ({mn:.2f})':>14}" for med, mn in cells)
        print(f"{str((args.batch, c, hw, hw)):>18} {k:>2} {s:>2} {text}")


if __name__ == "__main__":
    main()
