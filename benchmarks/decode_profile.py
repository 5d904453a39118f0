"""Where the whole-frame decode's time goes: each stage of the decode that ``Predictor`` runs after
the network, timed on the real outputs of the reference frame (``../shared/ref/images/img_480x640.png``,
``model_XS_17.pth``), for both chains, with and without flip test.

Stages (milliseconds, median [min-max] over ``--runs``):

- ``merge``: ``merge_outputs`` + ``aggregate`` on numpy outputs (what ONNX Runtime and OpenVINO
  hand over; ``cv2.resize``); ``merge(torch)``: the same on torch tensors (the torch backends);
- ``peaks``: ``find_peaks``; ``match``: ``group(refine=False)`` less ``peaks`` (candidate tags,
  matching, adjust, scores); ``refine``: ``group()`` less ``group(refine=False)``;
- ``back``: ``to_image`` + ``people_boxes``;
- ``decode``: merge (numpy) + group + back, one after the other, as the Predictor's decode stage;
- with ``--network B``: ``network`` (backend B on the frame) and ``decode after network`` (the
  decode of that run's fresh outputs, timed alone), and their ratio.

``--baseline REV`` also loads ``litepose/decode`` as it was at git revision ``REV`` (with its own
build of that revision's ``decode.c``) and times it in the same run, alternating the two variants
call by call (this VM's speed drifts by 20-40%), each first in every other run, and checks that
both decode the same people, there and on ``--random`` random crowds and network outputs (bit for
bit).

Usage: python benchmarks/decode_profile.py [--runs N] [--threshold T] [--baseline REV [--random N]] [--threads N]
       [--clock wall|cpu] [--network onnxruntime [--network-threads N]] [--chains fast,original]
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

import litepose
from litepose.media import read_image
from litepose.predictor import people_boxes

REPO = Path(__file__).resolve().parents[1]


def load_baseline(rev: str) -> tuple[ModuleType, ModuleType]:
    """``litepose/decode``'s grouping and testtime modules at git revision ``rev``, loaded as the
    package ``litepose._decode_baseline`` (its relative imports resolve inside ``litepose``)."""
    folder = Path(tempfile.mkdtemp(prefix="decode-baseline-"))
    names = subprocess.run(
        ["git", "ls-tree", "--name-only", rev, "litepose/decode/"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in names:
        src = subprocess.run(["git", "show", f"{rev}:{name}"], cwd=REPO, capture_output=True, check=True).stdout
        (folder / Path(name).name).write_bytes(src)
    pkg = "litepose._decode_baseline"
    spec = importlib.util.spec_from_file_location(pkg, folder / "__init__.py", submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[pkg] = module
    spec.loader.exec_module(module)
    if (folder / "_native.py").exists():
        _baseline_kernels(rev, folder, importlib.import_module(pkg + "._native"))
    return importlib.import_module(pkg + ".grouping"), importlib.import_module(pkg + ".testtime")


def _baseline_kernels(rev: str, folder: Path, base_native: ModuleType) -> None:
    """Give the baseline its own compiled kernels: ``decode.c`` as it was at ``rev``, built with the
    library's flags into ``folder`` (the current library exports the current kernels, whose ABI the
    baseline would refuse, and it would then time its Python versions instead)."""
    from litepose import native

    src = None
    for path in ("litepose/native/_csrc/decode.c", "litepose/_csrc/decode.c"):
        res = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=REPO, capture_output=True)
        if res.returncode == 0:
            src = res.stdout
            break
    cc = native._compiler()
    if src is None or cc is None:
        print(f"baseline {rev}: no decode.c or no C compiler: the baseline runs its Python versions")
        return
    (folder / "decode.c").write_bytes(src)
    lib_path = folder / "decode_baseline.so"
    subprocess.run([cc, *native.CFLAGS, "-o", str(lib_path), str(folder / "decode.c")], check=True)
    lib = ctypes.CDLL(str(lib_path))
    if lib.litepose_decode_abi_version() != base_native._ABI:
        raise RuntimeError(f"baseline {rev}: decode.c's ABI is not its _native.py's")
    for name, argtypes in base_native._SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = base_native._RESTYPES.get(name, ctypes.c_int)
        fn.argtypes = argtypes
    base_native._library = lambda: lib


def stages(g: ModuleType, tt: ModuleType, outs: dict, chain: str, thr: float, ks, net=None, clock=None) -> dict:
    """The timed callables of one decoder variant on one frame's network outputs. ``net``: a
    ``flip -> (outputs, flipped)`` network run, for the stages ``network`` and ``decode after
    network`` (the decode of that run's fresh outputs, timed alone with ``clock``: the caches hold
    what the network left, as in the Predictor)."""
    out, flipped, geometry = outs["out"], outs["flipped"], outs["geometry"]
    w, h = geometry.size
    size = (h // 2, w // 2) if chain == "fast" else (h, w)
    settings = dict(detection_threshold=thr, subpixel="parabola" if chain == "fast" else "quarter")
    settings["grouping_order"] = ks.grouping_order

    def merge(tensors: bool = False, out=out, flipped=flipped):
        o = [torch.from_numpy(x) for x in out] if tensors else out
        f = None if flipped is None else ([torch.from_numpy(x) for x in flipped] if tensors else flipped)
        hms, tags = tt.merge_outputs(o, ks.num_joints, size, f, ks.flip_index)
        hm, tag = tt.aggregate([(1.0, hms, tags)])
        return (hm.numpy(), tag.numpy()) if tensors else (np.asarray(hm), np.asarray(tag))

    hm, tag = merge()
    hm, tag = hm[0], tag[0]
    kpts, _ = g.group(hm, tag, **settings)

    def back(k=kpts):
        k = tt.to_image(k, geometry, (size[1], size[0]))
        return k, people_boxes(k)

    def decode(out=out, flipped=flipped):
        m, t = merge(out=out, flipped=flipped)
        k, s = g.group(m[0], t[0], **settings)
        return back(k), s

    fns = {
        "merge": merge,
        "merge(torch)": lambda: merge(True),
        "peaks": lambda: g.find_peaks(hm, thr, 30, 5),
        "group-refine": lambda: g.group(hm, tag, refine=False, **settings),
        "group": lambda: g.group(hm, tag, **settings),
        "back": back,
        "decode": decode,
    }
    if net is not None:
        use_flip = flipped is not None

        def after_network() -> float:
            o, f = net(use_flip)
            t0 = clock()
            decode(o, f)
            return (clock() - t0) * 1e3

        fns["network"] = lambda: net(use_flip)
        fns["decode after network"] = after_network
    return fns


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float32).view(np.uint32)


def compare_random(now: tuple[ModuleType, ModuleType], base: tuple[ModuleType, ModuleType], n: int, ks) -> str:
    """Decode ``n`` random synthetic crowds (1-60 people, 1 or 2 tag channels, noise, close tags) with
    several decoder settings, and ``n`` random network outputs through the numpy merge (both chains'
    sizes, flip test or not) then the decoder, with both variants; how many differ in any bit."""
    from litepose.testing import synthetic_maps

    (g, tt), (bg, btt) = now, base
    rng = np.random.default_rng(2026)
    settings = [
        {},
        {"legacy": True},
        {"subpixel": "parabola", "detection_threshold": 0.05},
        {"subpixel": "parabola", "max_people": 60, "detection_threshold": 0.2},
        {"adjust": False},
        {"tag_threshold": 0.5, "nms_kernel": 3},
    ]
    differ = total = 0

    def same(a, b) -> bool:
        (ka, sa), (kb, sb) = a, b
        return ka.shape == kb.shape and np.array_equal(_bits(ka), _bits(kb)) and np.array_equal(_bits(sa), _bits(sb))

    for t in range(n):
        m = synthetic_maps(
            int(rng.integers(1, 61)), int(rng.integers(40, 160)), int(rng.integers(40, 200)),
            tag_dims=int(rng.integers(1, 3)), missing_per_person=int(rng.integers(0, 8)),
            noise=float(rng.choice([0.02, 0.1, 0.4])), tag_sep=float(rng.choice([0.3, 0.7, 1.5])), seed=t,
        )  # fmt: skip
        for kw in settings:
            total += 1
            differ += not same(g.group(m.heatmaps, m.tags, **kw), bg.group(m.heatmaps, m.tags, **kw))
    for t in range(n):
        h, w = int(rng.integers(8, 70)), int(rng.integers(8, 90))
        k = ks.num_joints
        outs = [rng.normal(0, 0.5, (1, 2 * k, h, w)), rng.normal(0, 0.5, (1, k, 2 * h, 2 * w))]
        outs = [o.astype(np.float32) for o in outs]
        flipped = [rng.normal(0, 0.5, o.shape).astype(np.float32) for o in outs] if t % 2 else None
        for size in ((2 * h, 2 * w), (4 * h, 4 * w)):
            maps = [m.aggregate([(1.0, *m.merge_outputs(outs, k, size, flipped, ks.flip_index))]) for m in (tt, btt)]
            for kw in ({"subpixel": "parabola", "detection_threshold": 0.3}, {"detection_threshold": 0.3}):
                total += 1
                a = g.group(maps[0][0][0], maps[0][1][0], **kw)
                differ += not same(a, bg.group(maps[1][0][0], maps[1][1][0], **kw))
    return f"random decodes: {differ} of {total} differ in any bit"


def fmt(ts: list[float]) -> str:
    return f"{statistics.median(ts):6.2f} [{min(ts):.2f}-{max(ts):.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--threshold", type=float, default=1.0, help="detection threshold (the issue's: 1.0)")
    ap.add_argument("--baseline", help="git revision to time against, e.g. HEAD~3")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (for the torch merge and the maps)")
    ap.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: elapsed time (what a user waits); cpu: this process's CPU time, less disturbed when "
        "other processes load the machine (it sums the threads of multi-threaded stages: torch, cv2)",
    )
    ap.add_argument(
        "--random",
        type=int,
        default=40,
        help="with --baseline: also decode this many random crowds and random network outputs with both "
        "variants and count those that differ in any bit",
    )
    ap.add_argument(
        "--network",
        help="also time this backend's network (e.g. onnxruntime) and the decode of its fresh outputs right "
        "after it, in the same alternation: the decode's share of the network time under the same load",
    )
    ap.add_argument("--network-threads", type=int, default=1, help="the --network backend's threads")
    ap.add_argument("--chains", default="fast,original", help="which chains to time (comma-separated)")
    default_shared = Path(os.environ.get("LITEPOSE_SHARED", REPO.parent / "shared"))
    ap.add_argument("--shared", type=Path, default=default_shared)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ref = args.shared / "ref"
    image = read_image(ref / "images/img_480x640.png", frame="stored")
    predictor = litepose.Predictor(ref / "model_XS_17.pth", backend="torch", device="cpu")
    ks = predictor.keypoints
    x, geometry = predictor.network_input(image)
    frames = {}
    for flip in (False, True):
        out, flipped = predictor.backend.run(x, flip)
        to_np = lambda maps: None if maps is None else [np.array(m) for m in maps]  # noqa: E731
        frames[flip] = {"out": to_np(out), "flipped": to_np(flipped), "geometry": geometry}

    from litepose.decode import grouping, testtime

    variants = {"now": (grouping, testtime)}
    if args.baseline:
        variants = {"base": load_baseline(args.baseline), **variants}
        if args.random:
            print(compare_random(variants["now"], variants["base"], args.random, ks))
    print(
        f"reference frame 640x480, XS, threshold {args.threshold}, {args.runs} runs, alternating variants; "
        f"{args.clock} ms, median [min-max]"
    )
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    net = None
    if args.network:
        other = litepose.Predictor(ref / "model_XS_17.pth", backend=args.network, threads=args.network_threads)
        x_net, _ = other.network_input(image)
        print(f"network: {other.runtime}, {args.network_threads} thread(s), on the same frame")

        def net(flip: bool):
            out, flipped = other.backend.run(x_net, flip)
            return [np.asarray(m) for m in out], None if flipped is None else [np.asarray(m) for m in flipped]

    for chain in args.chains.split(","):
        for flip in (False, True):
            fns = {
                v: stages(g, tt, frames[flip], chain, args.threshold, ks, net, clock) for v, (g, tt) in variants.items()
            }
            results = {v: fns[v]["decode"]() for v in fns}
            (k0, _), s0 = results[next(iter(results))]
            same = all(np.array_equal(k0, k) and np.array_equal(s0, s) for (k, _), s in results.values())
            times = {v: {s: [] for s in fns[v]} for v in fns}
            for run in range(args.runs):
                for s in fns["now"]:
                    # each variant first in every other run: the one timed second right after the
                    # other finds the same code and data warm (measured: ~2x on `back`, 5-10% on
                    # `decode` with identical variants)
                    for v in list(fns)[:: 1 if run % 2 else -1]:
                        t0 = clock()
                        own = fns[v][s]()  # (a float: the stage timed itself)
                        times[v][s].append(own if isinstance(own, float) else (clock() - t0) * 1e3)
            print(f"\n{chain} chain, {'flip' if flip else 'no flip'}: {len(k0)} people", end="")
            print(f"; variants decode identical people: {same}" if len(fns) > 1 else "")
            for v in fns:
                t = times[v]
                med = {s: statistics.median(ts) for s, ts in t.items()}
                print(f"  {v:>4}: " + "  ".join(f"{s} {fmt(ts)}" for s, ts in t.items()))
                ratio = ""
                if "network" in med:
                    ratio = (
                        f"  decode after network / network {100 * med['decode after network'] / med['network']:.1f}%"
                    )
                print(
                    f"        derived medians: match {med['group-refine'] - med['peaks']:.2f}  "
                    f"refine {med['group'] - med['group-refine']:.2f}{ratio}"
                )


if __name__ == "__main__":
    main()
