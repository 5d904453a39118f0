"""``litepose predict``: people and keypoints in images, folders, globs, videos or a webcam.

Writes skeleton overlays ``OUT/<stem>.jpg``, optionally ``OUT/results.json`` (COCO results
format), and for videos ``OUT/<stem>.mp4`` (overlaid, mp4v) plus ``OUT/<stem>.jsonl`` (one
JSON line per frame). Unreadable inputs are reported by name and skipped; the exit code is
non-zero only when nothing could be processed.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from pathlib import Path
from typing import Any

HELP = "detect people and their keypoints in images, folders, globs, videos or a webcam"

_GLOB_CHARS = set("*?[")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "source", metavar="SOURCE", help="image file, folder, glob ('imgs/*.jpg'), video file or webcam index"
    )
    p.add_argument(
        "--weights", metavar="W",
        help="checkpoint: a file (litepose's, the original's or the mmpose port's) or a name from 'litepose weights'",
    )  # fmt: skip
    p.add_argument(
        "--model", metavar="NAME",
        help="architecture (litepose-xs/-s/-m/-l); alone: random weights (for trying the pipeline only)",
    )  # fmt: skip
    p.add_argument("--output", metavar="DIR", default="runs/predict", help="output folder (default: runs/predict)")
    p.add_argument("--save-json", action="store_true", help="write OUT/results.json (COCO results format)")
    p.add_argument("--no-flip", action="store_true", help="no flip test (about 2x faster network)")
    p.add_argument("--threshold", metavar="T", type=float, default=0.1, help="detection threshold (default 0.1)")
    p.add_argument("--input-size", metavar="N", type=int, default=None, help="network input short side")
    p.add_argument("--device", metavar="D", default="cpu", help="torch device (default cpu)")
    p.add_argument("--show", action="store_true", help="also display results in a window")
    p.add_argument("--ann", metavar="COCO.json", help="COCO annotations: image ids and category for results.json")
    p.add_argument("--legacy", action="store_true", help="decode exactly as the original (defects included)")
    p.add_argument(
        "--threads", metavar="N", type=int, default=None,
        help="CPU threads for the network (default: torch's; 1 is often fastest on a busy machine)",
    )  # fmt: skip
    p.add_argument("--kpt-threshold", metavar="S", type=float, default=0.1, help="joints drawn above this score")


# -- sources -------------------------------------------------------------------------------------


def _resolve_source(source: str) -> tuple[list[Path], list[Path | int], list[tuple[str, str]]]:
    """(image files, videos or webcam indices, skipped (name, reason))."""
    from ..media import IMAGE_SUFFIXES, VIDEO_SUFFIXES

    if source.isdigit() and not Path(source).exists():
        return [], [int(source)], []
    if _GLOB_CHARS & set(source) and not Path(source).exists():
        files = sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file())
        if not files:
            raise FileNotFoundError(f"{source}: the pattern matches no file")
        explicit = False
    else:
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            if not files:
                raise FileNotFoundError(f"{source}: the folder has no files")
            explicit = False
        elif path.is_file():
            files, explicit = [path], True
        else:
            raise FileNotFoundError(f"{source}: no such file, folder or glob match (or webcam index)")
    images, videos, skipped = [], [], []
    for f in files:
        suffix = f.suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            videos.append(f)
        elif suffix in IMAGE_SUFFIXES or explicit:
            images.append(f)  # an explicit file of unknown type is tried as an image
        else:
            skipped.append((str(f), "not an image or video file"))
    return images, videos, skipped


# -- outputs -------------------------------------------------------------------------------------


def _person_json(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "keypoints": [[round(float(x), 2), round(float(y), 2), round(float(s), 4)] for x, y, s in p["keypoints"]],
        "score": round(float(p["score"]), 5),
        "box": [round(float(v), 2) for v in p["box"]],
    }


class _Ids:
    """image_id and category_id for COCO results: from --ann, else the numeric stem, else a
    running index."""

    def __init__(self, ann: str | None) -> None:
        self.by_name: dict[str, int] = {}
        self.category = 1
        self.next = 0
        if ann:
            path = Path(ann)
            if not path.is_file():
                raise FileNotFoundError(f"{ann}: annotation file does not exist")
            try:
                data = json.loads(path.read_text())
                self.by_name = {Path(im["file_name"]).name: int(im["id"]) for im in data["images"]}
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{ann}: not a COCO annotation file ({type(e).__name__}: {e})") from None
            cats = [c for c in data.get("categories", []) if c.get("keypoints")]
            if cats:
                self.category = int(cats[0]["id"])

    def image_id(self, path: Path) -> int:
        if path.name in self.by_name:
            return self.by_name[path.name]
        if path.stem.isdigit():
            return int(path.stem)
        self.next += 1
        return self.next


def _unique(out: Path, stem: str, suffix: str, used: set[str]) -> Path:
    name, i = stem, 1
    while name + suffix in used:
        i += 1
        name = f"{stem}_{i}"
    used.add(name + suffix)
    return out / (name + suffix)


class _Display:
    """cv2.imshow when a display exists; otherwise says so once."""

    def __init__(self, wanted: bool) -> None:
        self.on = False
        if not wanted:
            return
        import cv2

        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            reason = "no display ($DISPLAY is not set)"
        else:
            try:
                cv2.namedWindow("litepose", cv2.WINDOW_NORMAL)
                self.on = True
                return
            except cv2.error:
                reason = "this OpenCV build has no GUI support (opencv-python-headless)"
        print(f"--show: {reason}; results are only written to the output folder", file=sys.stderr)

    def show(self, rgb: Any) -> bool:
        """Show a frame; False when the user pressed q / Esc."""
        if not self.on:
            return True
        import cv2

        cv2.imshow("litepose", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)

    def close(self) -> None:
        if self.on:
            import cv2

            cv2.destroyAllWindows()


# -- main ----------------------------------------------------------------------------------------


def _build_predictor(args: argparse.Namespace) -> Any:
    from ..models import create_model, load_checkpoint
    from ..predictor import Predictor

    if args.weights:
        model, _info = load_checkpoint(args.weights, arch=args.model)
    elif args.model:
        model = create_model(args.model)
        print(
            f"warning: --model {args.model} without --weights: the network has random weights, "
            "so the detected people are meaningless (use it to try the pipeline only)",
            file=sys.stderr,
        )
    else:
        raise ValueError("give --weights W (a checkpoint) or --model NAME (random weights, for trying the pipeline)")
    return Predictor(
        model,
        input_size=args.input_size,
        flip_test=not args.no_flip,
        detection_threshold=args.threshold,
        legacy=args.legacy,
        device=args.device,
    )


def run(args: argparse.Namespace) -> int:
    import cv2
    from tqdm import tqdm

    from ..media import MediaError, VideoReader, VideoWriter, read_image
    from ..viz import draw_people

    if args.threads is not None:
        import torch

        if args.threads < 1:
            raise ValueError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    images, videos, skipped = _resolve_source(args.source)
    ids = _Ids(args.ann) if (args.ann or args.save_json) else None
    predictor = _build_predictor(args)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    display = _Display(args.show)
    used: set[str] = set()
    results: list[dict[str, Any]] = []
    n_images = n_frames = n_people = 0

    def draw(rgb: Any, people: list[dict[str, Any]]) -> Any:
        return draw_people(rgb, people, predictor.keypoints, args.kpt_threshold)

    bar = tqdm(images, desc="images", unit="img", disable=len(images) < 2, file=sys.stderr)
    for path in bar:
        try:
            rgb = read_image(path, frame="upright")
        except (MediaError, OSError) as e:
            skipped.append((str(path), str(e).removeprefix(f"{path}: ")))
            continue
        people = predictor(rgb)
        n_images += 1
        n_people += len(people)
        overlay = draw(rgb, people)
        dst = _unique(out, path.stem, ".jpg", used)
        if not cv2.imwrite(str(dst), cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR)):
            raise OSError(f"{dst}: could not write the overlay")
        if ids is not None:
            image_id = ids.image_id(path)
            for p in people:
                flat = [round(float(v), 3) for v in p["keypoints"].reshape(-1)]
                results.append(
                    {"image_id": image_id, "category_id": ids.category, "keypoints": flat, "score": float(p["score"])}
                )
        if not display.show(overlay):
            break

    for video in videos:
        name = f"webcam{video}" if isinstance(video, int) else video.stem
        try:
            reader = VideoReader(video)
        except MediaError as e:
            label = f"webcam {video}" if isinstance(video, int) else str(video)
            skipped.append((label, str(e).removeprefix(f"{label}: ")))
            continue
        mp4 = _unique(out, name, ".mp4", used)
        jsonl = mp4.with_suffix(".jsonl")
        frames = 0
        with VideoWriter(mp4, reader.fps) as writer, open(jsonl, "w") as lines:
            bar = tqdm(reader, desc=name, unit="frame", total=reader.frame_count, file=sys.stderr)
            try:
                for rgb in bar:
                    people = predictor(rgb)
                    lines.write(json.dumps({"frame": frames, "people": [_person_json(p) for p in people]}) + "\n")
                    overlay = draw(rgb, people)
                    writer.write(overlay)
                    frames += 1
                    n_people += len(people)
                    if not display.show(overlay):
                        break
            except KeyboardInterrupt:  # a webcam runs until interrupted; keep what was written
                pass
        if frames == 0:
            skipped.append((str(video), "no frame could be decoded"))
            mp4.unlink(missing_ok=True)
            jsonl.unlink(missing_ok=True)
        n_frames += frames
    display.close()

    if args.save_json and n_images:
        (out / "results.json").write_text(json.dumps(results))
    for name, reason in skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    done = n_images + n_frames
    if done == 0:
        print("litepose predict: nothing could be processed", file=sys.stderr)
        return 1
    t = predictor.timings.per_image()
    what = ", ".join(
        s for s in (f"{n_images} image(s)" if n_images else "", f"{n_frames} video frame(s)" if n_frames else "") if s
    )
    print(
        f"{what}, {n_people} people; {t['total']:.1f} ms per image "
        f"(preprocess {t['preprocess']:.1f}, network {t['network']:.1f}, decode {t['decode']:.1f}); "
        f"results in {out}" + (f"; {len(skipped)} skipped" if skipped else "")
    )
    return 0
