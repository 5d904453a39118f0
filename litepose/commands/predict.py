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
    from . import _options as o

    p.add_argument(
        "source", metavar="SOURCE", help="image file, folder, glob ('imgs/*.jpg'), video file or webcam index"
    )
    p.add_argument("--save-json", action="store_true", help="write OUT/results.json (COCO results format)")
    p.add_argument("--ann", metavar="COCO.json", help="COCO annotations: image ids and category for results.json")
    p.add_argument("--show", action="store_true", help="also display results in a window")
    p.add_argument("--kpt-threshold", metavar="S", type=float, default=0.1, help="joints drawn above this score")
    o.add_model_options(p)
    o.add_inference_options(p)
    o.add_device_options(p)
    o.add_output_option(p, "folder", "overlays, results.json, per-video .mp4 and .jsonl", "runs/predict")
    o.add_json_option(p)


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


class _Run:
    """One predict run: the predictor, where its files go, and what it has done so far."""

    def __init__(self, args: argparse.Namespace, predictor: Any, ids: _Ids | None) -> None:
        from ..viz import draw_people

        self.args = args
        self.predictor = predictor
        self.ids = ids
        self.out = Path(args.output)
        self.out.mkdir(parents=True, exist_ok=True)
        self.display = _Display(args.show)
        self.used: set[str] = set()
        self.results: list[dict[str, Any]] = []
        self.skipped: list[tuple[str, str]] = []
        self.images = self.frames = self.people = 0
        self._draw_people = draw_people

    def draw(self, rgb: Any, people: list[dict[str, Any]]) -> Any:
        return self._draw_people(rgb, people, self.predictor.keypoints, self.args.kpt_threshold)

    def image(self, path: Path) -> bool:
        """Predict one image file: overlay, COCO results; False when the user asked to stop."""
        import cv2

        from ..media import MediaError, read_image

        try:
            rgb = read_image(path, frame="upright")
        except (MediaError, OSError) as e:
            self.skipped.append((str(path), str(e).removeprefix(f"{path}: ")))
            return True
        people = self.predictor(rgb)
        self.images += 1
        self.people += len(people)
        overlay = self.draw(rgb, people)
        dst = _unique(self.out, path.stem, ".jpg", self.used)
        if not cv2.imwrite(str(dst), cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR)):
            raise OSError(f"{dst}: could not write the overlay")
        if self.ids is not None:
            image_id, category = self.ids.image_id(path), self.ids.category
            for p in people:
                flat = [round(float(v), 3) for v in p["keypoints"].reshape(-1)]
                self.results.append(
                    {"image_id": image_id, "category_id": category, "keypoints": flat, "score": float(p["score"])}
                )
        return self.display.show(overlay)

    def video(self, video: Path | int) -> None:
        """Predict every frame of a video (or a webcam until interrupted): OUT/<name>.mp4 and .jsonl."""
        from tqdm import tqdm

        from ..media import MediaError, VideoReader, VideoWriter

        name = f"webcam{video}" if isinstance(video, int) else video.stem
        try:
            reader = VideoReader(video)
        except MediaError as e:
            label = f"webcam {video}" if isinstance(video, int) else str(video)
            self.skipped.append((label, str(e).removeprefix(f"{label}: ")))
            return
        mp4 = _unique(self.out, name, ".mp4", self.used)
        jsonl = mp4.with_suffix(".jsonl")
        frames = 0
        with VideoWriter(mp4, reader.fps) as writer, open(jsonl, "w") as lines:
            bar = tqdm(reader, desc=name, unit="frame", total=reader.frame_count, file=sys.stderr)
            try:
                for rgb in bar:
                    people = self.predictor(rgb)
                    lines.write(json.dumps({"frame": frames, "people": [_person_json(p) for p in people]}) + "\n")
                    overlay = self.draw(rgb, people)
                    writer.write(overlay)
                    frames += 1
                    self.people += len(people)
                    if not self.display.show(overlay):
                        break
            except KeyboardInterrupt:  # a webcam runs until interrupted; keep what was written
                pass
        if frames == 0:
            self.skipped.append((str(video), "no frame could be decoded"))
            mp4.unlink(missing_ok=True)
            jsonl.unlink(missing_ok=True)
        self.frames += frames

    def finish(self) -> int:
        """Write results.json, report the skipped inputs and the summary; the exit code."""
        self.display.close()
        results_json = None
        if self.args.save_json and self.images:
            results_json = self.out / "results.json"
            results_json.write_text(json.dumps(self.results))
        for name, reason in self.skipped:
            print(f"skipped {name}: {reason}", file=sys.stderr)
        t = self.predictor.timings.per_image()
        summary = {
            "images": self.images,
            "video_frames": self.frames,
            "people": self.people,
            "output": str(self.out),
            "results_json": str(results_json) if results_json else None,
            "skipped": [{"source": n, "reason": r} for n, r in self.skipped],
            "ms_per_image": {k: round(v, 2) for k, v in t.items()},
        }
        from ._options import emit

        if self.images + self.frames == 0:
            print("litepose predict: nothing could be processed", file=sys.stderr)
            emit(self.args, summary, None)
            return 1
        what = ", ".join(
            s
            for s in (
                f"{self.images} image(s)" if self.images else "",
                f"{self.frames} video frame(s)" if self.frames else "",
            )
            if s
        )
        emit(
            self.args,
            summary,
            f"{what}, {self.people} people; {t['total']:.1f} ms per image "
            f"(preprocess {t['preprocess']:.1f}, network {t['network']:.1f}, decode {t['decode']:.1f}); "
            f"results in {self.out}" + (f"; {len(self.skipped)} skipped" if self.skipped else ""),
        )
        return 0


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ._options import build_predictor

    images, videos, skipped = _resolve_source(args.source)
    ids = _Ids(args.ann) if (args.ann or args.save_json) else None
    job = _Run(args, build_predictor(args), ids)
    job.skipped.extend(skipped)
    for path in tqdm(images, desc="images", unit="img", disable=len(images) < 2, file=sys.stderr):
        if not job.image(path):
            break
    for video in videos:
        job.video(video)
    return job.finish()
