"""Training throughput of LitePose-XS on this machine, one row per training variant.

Each variant trains a fresh XS (same seed) on SynthPose training samples the way
``litepose.engine.trainer`` does: KeypointDataset + TransformConfig(input_size), a DataLoader
with 1 worker (kept alive between epochs: with a small dataset, restarting it every few steps
would dominate) or, in the last variant, none, channels_last, the real LitePoseLoss and AdamW with the shipped recipe's
settings (configs/synthpose_xs.yaml), eager fp32. A step is batch + forward + loss + backward +
optimizer step, data loading included; images per second = batch size / the median time of the
timed steps (after the warm-up steps; the median resists other load on the machine). Each variant
runs in a fresh process, so that process-wide settings do not leak from one into the next.

Variants are the list VARIANTS below, each adding one lever to the one before: (a) the step as
the original trains (aten only: LITEPOSE_FAST_CONV=0, LITEPOSE_FAST_BN=0), (b) the C depthwise-conv
gradients, (c) the C BatchNorm + activation, (d) torch's fused AdamW, (e) the CPU process settings
of litepose.engine.cputune, (f) decoded images cached in memory and uint8 batches normalised in
the training process (litepose.normalization.network_input), (g) loading in the training process
instead of a worker process (what the trainer's data.workers auto picks on a CPU with up to 2
cores); (g) is what litepose ships. Add a Variant to compare another lever.

Usage: python benchmarks/train_speed.py [--steps 15] [--warmup 3] [--batch-size 16]
       [--input-size 128] [--threads 2] [--images 256] [--data DIR] [--rounds 1] [VARIANT ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from _timing import timed
from torch.utils.data import DataLoader

from litepose.data.dataset import KeypointDataset
from litepose.data.synth import make_synthpose
from litepose.data.transforms import TransformConfig
from litepose.engine.config import TrainConfig
from litepose.engine.cputune import cpu_training_settings
from litepose.engine.loss import LitePoseLoss
from litepose.models import create_model, fastbn, fastconv
from litepose.normalization import network_input

RECIPE = Path(__file__).resolve().parents[1] / "configs" / "synthpose_xs.yaml"


@dataclass(frozen=True)
class Variant:
    """One way of training: environment variables set for its run, and an optional hook that
    may change the model before training (it returns the module to train)."""

    name: str
    about: str
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[torch.nn.Module], torch.nn.Module] | None = None
    fused_adamw: bool = False  # torch's fused AdamW kernel (one pass over all parameters)
    cpu_settings: bool = False  # litepose.engine.cputune: denormals flushed, allocator keeps freed blocks
    cached_uint8: bool = False  # decoded images in memory, uint8 batches normalised by network_input
    workers: int = 1  # loader worker processes (0: load in the training process)


OFF = {fastconv.ENV_ENABLE: "0", fastbn.ENV_ENABLE: "0"}
ON = {fastconv.ENV_ENABLE: "1", fastbn.ENV_ENABLE: "1"}
VARIANTS = [
    Variant("eager fp32", "the original recipe's step: aten only", OFF),
    Variant("+ fast dw conv", "C depthwise-conv gradients", {**OFF, fastconv.ENV_ENABLE: "1"}),
    Variant("+ fast bn", "and C BatchNorm + ReLU6", ON),
    Variant("+ fused adamw", "and torch's fused AdamW step", ON, fused_adamw=True),
    Variant(
        "+ cpu settings",
        "and denormals flushed, freed memory kept",
        ON,
        fused_adamw=True,
        cpu_settings=True,
    ),
    Variant(
        "+ cached uint8",
        "and decoded images cached, uint8 batches",
        ON,
        fused_adamw=True,
        cpu_settings=True,
        cached_uint8=True,
    ),
    Variant(
        "+ in-process",
        "and loading in the training process (shipped)",
        ON,
        fused_adamw=True,
        cpu_settings=True,
        cached_uint8=True,
        workers=0,
    ),
]


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def batches(ds: KeypointDataset, batch_size: int, seed: int, workers: int) -> Iterator[dict[str, Any]]:
    """Endless shuffled training batches (from persistent workers if ``workers`` > 0)."""
    loader = DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )
    while True:
        yield from loader


def run(variant: Variant, cfg: TrainConfig, args: argparse.Namespace) -> dict[str, float]:
    """Train ``args.warmup + args.steps`` steps; median and fastest time of the last ``args.steps``."""
    tcfg = TransformConfig(input_size=args.input_size, normalize=not variant.cached_uint8)
    ds = KeypointDataset(Path(args.data) / "annotations.json", transform=tcfg)
    if variant.cached_uint8:
        ds.cache_images(max_mb=4096)  # before the workers fork: they share the pages
    with environment(variant.env), cpu_training_settings(variant.cpu_settings):
        torch.manual_seed(0)
        model = create_model("litepose-xs", num_joints=ds.num_joints)
        model.keypoints = ds.keypoints
        model.to(memory_format=torch.channels_last).train()
        if variant.prepare is not None:
            model = variant.prepare(model)
        t, lc = cfg.train, cfg.loss
        fused = {"fused": True} if variant.fused_adamw else {}
        opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay, **fused)
        loss_fn = LitePoseLoss(ds.num_joints, lc.heatmap_factors, lc.push_factor, lc.pull_factor, lc.push_type)
        data = batches(ds, args.batch_size, seed=0, workers=variant.workers)
        losses = []

        def step() -> None:
            batch = next(data)
            images = network_input(batch["image"])  # float32 channels_last (normalised if uint8)
            opt.zero_grad(set_to_none=True)
            out = model(images)
            total = loss_fn(out, batch["heatmaps"], batch["masks"], batch["joints"][0])["total"]
            total.backward()
            opt.step()
            losses.append(float(total.detach()))

        for _ in range(args.warmup - 1):
            step()
        median, fastest = timed(step, args.steps)  # one more warm-up step, then the timed ones
    return {"ms": median, "min_ms": fastest, "img_s": args.batch_size * 1e3 / median, "loss": losses[-1]}


def _in_subprocess(v: Variant, folder: Path, args: argparse.Namespace) -> dict[str, float]:
    """Run one variant in a fresh Python process: process-wide settings (the allocator tuning of
    the shipped variant cannot be undone) never leak into the next variant."""
    cmd = [sys.executable, __file__, "--worker", v.name, "--data", str(folder)]
    for opt in ("steps", "warmup", "batch_size", "input_size", "threads"):
        cmd += [f"--{opt.replace('_', '-')}", str(getattr(args, opt))]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="*", help="names of the variants to run (default: all)")
    ap.add_argument("--steps", type=int, default=15, help="timed steps per variant and round")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (at least 1)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--input-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    # 256: an epoch of 16 steps at batch 16 (with 64, every 4th step waited for a worker's refilled queue)
    ap.add_argument("--images", type=int, default=256, help="SynthPose training images to generate")
    ap.add_argument("--data", help="SynthPose folder (generated there if absent; default: a temporary one)")
    ap.add_argument("--rounds", type=int, default=1, help="alternate the variants this many times (median)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one variant in this process
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    chosen = [v for v in VARIANTS if not args.variants or v.name in args.variants]
    if not chosen:
        ap.error(f"no such variant; known: {[v.name for v in VARIANTS]}")

    if args.worker:  # one variant, one round, in this fresh process: the result as JSON
        v = next(v for v in VARIANTS if v.name == args.worker)
        print(json.dumps(run(v, TrainConfig.load(RECIPE), args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.data or Path(tmp) / "synthpose")
        if not (folder / "annotations.json").is_file():
            make_synthpose(folder, args.images, seed=0, progress=False)
        fast = fastconv.fast_conv_available() and fastbn.fast_bn_enabled()  # compile the kernels before timing
        results: dict[str, list[dict[str, float]]] = {v.name: [] for v in chosen}
        for r in range(args.rounds):
            for v in chosen:
                res = _in_subprocess(v, folder, args)
                results[v.name].append(res)
                print(f"round {r + 1}, {v.name}: {res['ms']:.0f} ms/step (median)", file=sys.stderr, flush=True)

    print(
        f"LitePose-XS training: {args.input_size} px, batch {args.batch_size}, {args.threads} threads, "
        f"{args.steps} timed steps after {args.warmup} warm-up, median of {args.rounds} round(s); "
        f"torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}; "
        f"fast kernels {'available' if fast else 'UNAVAILABLE (aten used)'}; each variant in a fresh process"
    )
    print(f"{'variant':<16} {'ms/step':>8} {'fastest':>8} {'img/s':>7} {'speed-up':>9} {'last loss':>10}  about")
    base = None
    for v in chosen:
        rs = results[v.name]
        ms = statistics.median(r["ms"] for r in rs)
        fastest = min(r["min_ms"] for r in rs)
        img_s = args.batch_size * 1e3 / ms
        base = base or img_s
        loss = rs[-1]["loss"]
        print(f"{v.name:<16} {ms:>8.0f} {fastest:>8.0f} {img_s:>7.1f} {img_s / base:>8.2f}x {loss:>10.5f}  {v.about}")


if __name__ == "__main__":
    main()
