"""``Predictor``: RGB images in, people out (keypoints in image pixels).

The original's test-time chain (:mod:`litepose.preprocess` before the network,
:mod:`litepose.decode.testtime` after it) around the fast grouping
decoder (:func:`litepose.decode.group`), with per-stage timings::

    from litepose import Predictor
    predictor = Predictor("litepose-xs-coco")   # a weights name (downloaded once) or a checkpoint path
    people = predictor(image_rgb)          # [{"keypoints": (K, 3), "score": s, "box": (x1, y1, x2, y2)}]
    batches = predictor.predict_batch(frames)
    predictor.timings.per_image()          # {"preprocess": ms, "network": ms, "decode": ms}
    Predictor("model_XS_17.onnx")          # an exported file: ONNX Runtime, no torch imported

The network runs through a backend (:mod:`litepose.runtime`: folded torch, eager torch,
TorchScript, ONNX Runtime, OpenVINO); this module imports no torch itself.
"""

from __future__ import annotations

import math
import numbers
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data.description import load_keypoint_set
from .data.keypoints import KeypointSet, KeypointSetError
from .decode import testtime as tt
from .decode.grouping import group
from .device import AUTO
from .media import to_rgb_uint8
from .models.spec import check_input_size
from .normalization import Normalization
from .preprocess import MAX_INPUT_PIXELS, ResizeGeometry, resize_geometry, resize_image, square_geometry
from .runtime import needs_export, open_backend
from .runtime.auto import AUTO as AUTO_BACKEND
from .runtime.auto import check_precision, choose_backend

__all__ = ["Predictor", "Timings", "people_boxes", "CHAINS"]

STAGES = ("preprocess", "network", "decode")
#: Post-processing chains: ``fast`` (the default) groups at the network's 1/2-resolution output
#: with parabola sub-pixel offsets; ``original`` at the input size (the original's PROJECT2IMAGE),
#: for parity and published numbers (``legacy=True`` implies it).
CHAINS = ("original", "fast")


@dataclass
class Timings:
    """Milliseconds spent per stage, summed over ``images`` images."""

    preprocess: float = 0.0
    network: float = 0.0
    decode: float = 0.0
    images: int = 0
    last: dict[str, float] = field(default_factory=dict)

    def add(self, stage_ms: dict[str, float], images: int) -> None:
        for s in STAGES:
            setattr(self, s, getattr(self, s) + stage_ms[s])
        self.images += images
        self.last = {s: stage_ms[s] / max(images, 1) for s in STAGES}

    def per_image(self) -> dict[str, float]:
        """Mean milliseconds per image for each stage, and their total."""
        n = max(self.images, 1)
        out = {s: getattr(self, s) / n for s in STAGES}
        out["total"] = sum(out.values())
        return out


def people_boxes(keypoints: np.ndarray) -> np.ndarray:
    """(P, K, 3) keypoints -> (P, 4) boxes (x1, y1, x2, y2) around the joints with score > 0."""
    if len(keypoints) == 0:
        return np.zeros((0, 4), np.float32)
    found = keypoints[:, :, 2] > 0
    found[~found.any(axis=1)] = True  # a person with no scored joint: box over all of them
    x = np.where(found, keypoints[:, :, 0], np.nan)
    y = np.where(found, keypoints[:, :, 1], np.nan)
    return np.stack([np.nanmin(x, 1), np.nanmin(y, 1), np.nanmax(x, 1), np.nanmax(y, 1)], axis=1).astype(np.float32)


def _open_backend(
    source: Any, backend: str | None, device: Any, threads: int | None, precision: str | None, legacy: bool
) -> tuple[Any, str]:
    """The runtime backend for ``source`` and, with ``auto``, why it was chosen
    (:mod:`litepose.runtime.auto`). A checkpoint asked for on a backend of exported files is
    exported once into the export cache (:mod:`litepose.export.cache`), a torch module to a
    temporary file (:func:`litepose.export.open_exported`): the runtime, below the export, does
    neither itself."""
    if precision is not None:
        check_precision(precision)
    reason = ""
    if backend in (None, AUTO_BACKEND):
        choice = choose_backend(source, precision or "fp32", device, legacy=legacy)
        backend, reason = choice.backend, choice.reason
    if not needs_export(source, backend):
        return open_backend(source, backend, device=device, threads=threads, precision=precision), reason
    if isinstance(source, (str, Path)):
        import sys

        from .export.cache import cached_export
        from .models.weights import resolve_checkpoint

        path = cached_export(
            resolve_checkpoint(source), backend, precision=precision or "fp32", log=lambda s: print(s, file=sys.stderr)
        )
        return open_backend(path, backend, threads=threads, precision=precision), reason
    from .export import open_exported

    if precision not in (None, "fp32"):
        raise ValueError(f"precision {precision}: export the model first (litepose.export.export_model)")
    return open_exported(source, backend, threads=threads), reason


def _resolve_keypoints(keypoints: KeypointSet | str | Path | dict | None, own: KeypointSet, k: int) -> KeypointSet:
    """The override (anything :func:`~litepose.data.description.load_keypoint_set` takes), else
    the model's own; its size must be the model's."""
    if keypoints is None:
        ks = own
    else:
        ks = load_keypoint_set(keypoints)
    if ks.num_joints != k:
        raise KeypointSetError(f"keypoint set {ks.name!r} has {ks.num_joints} joints but the model predicts {k}")
    return ks


def _check_test_size(input_size: int, scales: tuple[float, ...]) -> None:
    """Refuse an input size that no image fits under the network-input cap; warn when the test-time
    resize, which rounds the short side up to a multiple of 64 as the original, runs another size."""
    try:
        resize_geometry(input_size, input_size, input_size, max(scales), min(scales))
    except ValueError:
        raise ValueError(
            f"input_size {input_size} is too large: even a square image would need a network input above "
            f"{MAX_INPUT_PIXELS} pixels (litepose.preprocess.MAX_INPUT_PIXELS)"
        ) from None
    if input_size % 64:
        warnings.warn(
            f"input_size {input_size} runs at {(input_size + 63) // 64 * 64}: the test-time resize rounds the "
            "short side up to a multiple of 64, as the original does",
            stacklevel=3,
        )


def _check_decoder_settings(detection_threshold: Any, tag_threshold: Any, max_people: Any) -> None:
    """Decoder settings must be finite and in range: a NaN threshold would silently find no one."""
    for name, v, ok, rule in (
        ("detection_threshold", detection_threshold, lambda x: 0 <= x <= 1, "in [0, 1]"),
        ("tag_threshold", tag_threshold, lambda x: x > 0, "positive"),
    ):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or not ok(v):
            raise ValueError(f"{name} must be a finite number {rule}, got {v!r}")
    if isinstance(max_people, bool) or not isinstance(max_people, numbers.Integral) or max_people < 1:
        raise ValueError(f"max_people must be a positive integer, got {max_people!r}")


def _numpy(x: Any) -> np.ndarray:
    return x.cpu().numpy() if hasattr(x, "cpu") else np.asarray(x)


class Predictor:
    """Multi-person pose estimation on RGB images with a LitePose model.

    Args:
        model_or_checkpoint: a model (``LitePose``), the path of a checkpoint (litepose's own,
            the original's or the mmpose port's releases), a weights name such as
            ``litepose-xs-coco`` (see :func:`litepose.load_checkpoint`, ``litepose weights``), or
            a file of ``litepose export`` (``.onnx``, OpenVINO ``.xml``, ``.torchscript``).
        input_size: short side of the network input, a positive multiple of 16 (default: the
            model's, else 256). The test-time resize rounds it up to a multiple of 64 as the
            original does (with a warning when that changes it); a size whose network input would
            exceed :data:`litepose.preprocess.MAX_INPUT_PIXELS` is refused.
        flip_test: also run the mirrored image and merge (the original's default).
        scales: test scales (multi-scale needs 1.0 among them; tags come from it).
        detection_threshold / tag_threshold / max_people: decoder settings (:func:`litepose.decode.group`):
            a finite threshold in [0, 1], a finite positive tag distance, a positive count.
        legacy: decode as the original did, defects included (to reproduce published numbers; bit-exact
            on the torch backend, see docs/inference.md for the exported runtimes);
            the original chain unless ``chain`` says otherwise.
        keypoints: keypoint metadata override (a KeypointSet, built-in name, YAML / COCO JSON
            path or dict, see :func:`litepose.data.description.load_keypoint_set`); default: the
            checkpoint's, else the built-in set for the number of joints. A set that does not
            fit the model is a :class:`~litepose.data.keypoints.KeypointSetError`.
        device: torch device for the network; ``"auto"`` (default, :func:`litepose.device.pick_device`):
            CUDA when available, else CPU. A model already there is used as it is (and set to
            eval mode); one elsewhere is copied there, so the caller's model never moves.
        backend: where the network runs (:mod:`litepose.runtime`): ``auto`` (the default,
            :mod:`litepose.runtime.auto`: an exported file on its own runtime; a checkpoint on the
            CPU on the fastest runtime installed here, exported once into a cache; a module, or
            CUDA: folded torch), ``torch`` (BatchNorm folded, channels-last), ``torch-eager``,
            ``torchscript``, ``onnxruntime``, ``openvino``, ``ncnn``, ``executorch``.
        precision: ``fp32``, ``bf16`` (OpenVINO on a CPU with AVX512-BF16 / AMX) or ``int8`` (a
            checkpoint is quantised on generated calibration images once, then cached); default:
            an exported file's own, else fp32. :attr:`runtime` says what runs.
        threads: the backend's CPU threads (torch: the process's); default: the runtime's own. The
            decoder's merge, peak search and refine split over as many (default: every CPU), the same people.
        chain: post-processing (:data:`CHAINS`): ``"fast"`` (grouping at the network's
            1/2-resolution output, parabola sub-pixel offsets: the same AP on SynthPose, several
            times faster) or ``"original"`` (maps brought to the input size before grouping, as
            the original). Default: ``"original"`` with ``legacy``, else ``"fast"``.

    The input is normalised with the statistics the checkpoint records (``model.normalization``,
    :mod:`litepose.normalization`; ImageNet's when it records none).
    """

    def __init__(
        self,
        model_or_checkpoint: Any,
        *,
        input_size: int | None = None,
        flip_test: bool = True,
        scales: Sequence[float] = (1.0,),
        detection_threshold: float = 0.1,
        tag_threshold: float = 1.0,
        max_people: int = 30,
        legacy: bool = False,
        keypoints: KeypointSet | str | Path | dict | None = None,
        device: Any = AUTO,
        backend: str = AUTO_BACKEND,
        threads: int | None = None,
        chain: str | None = None,
        precision: str | None = None,
    ) -> None:
        chain = chain or ("original" if legacy else "fast")
        if chain not in CHAINS:
            raise ValueError(f"chain must be one of {', '.join(CHAINS)}, got {chain!r}")
        self.backend, why = _open_backend(model_or_checkpoint, backend, device, threads, precision, legacy)
        #: one line: which runtime runs the network, in which precision, and why (``backend="auto"``)
        self.runtime = self.backend.describe() + (f" (auto: {why})" if why else "")
        self.model = self.backend.model  # the torch module (torch backends), else None
        self.device = getattr(self.backend, "device", None)
        info = self.backend.info
        self.normalization: Normalization = info.normalization
        self.num_joints = info.num_joints
        self.keypoints = _resolve_keypoints(keypoints, info.keypoints, self.num_joints)
        self.chain = chain
        size = input_size if input_size is not None else info.input_size or 256
        fixed = self.backend.static_size
        if fixed and (size != fixed or len(tuple(scales)) > 1):
            raise ValueError(
                f"the network was exported for {fixed}x{fixed} inputs only (--static): it takes no other input size "
                "and no multi-scale test (export it without --static for those)"
            )
        self.input_size = check_input_size(size, "input_size")
        scales = tuple(float(s) for s in scales)
        if not scales or not all(math.isfinite(s) and s > 0 for s in scales):
            raise ValueError(f"scales must be positive numbers, got {scales}")
        if len(scales) > 1 and 1.0 not in scales:
            raise ValueError(f"multi-scale test needs 1.0 among the scales (tags come from it), got {scales}")
        self.scales = tuple(sorted(scales, reverse=True))
        _check_test_size(self.input_size, self.scales)
        _check_decoder_settings(detection_threshold, tag_threshold, max_people)
        self.flip_test = bool(flip_test)
        self.decoder_settings: dict[str, Any] = {
            "detection_threshold": float(detection_threshold),
            "tag_threshold": float(tag_threshold),
            "max_people": int(max_people),
            "legacy": bool(legacy),
            "grouping_order": self.keypoints.grouping_order,
            "subpixel": "parabola" if chain == "fast" else "quarter",
            # the decoder's kernels on the network's cores too: they are idle while it decodes
            "threads": int(threads) if threads else (os.cpu_count() or 1),
        }
        self.timings = Timings()

    # -- public ------------------------------------------------------------------------------------

    def __call__(self, image: np.ndarray) -> list[dict[str, Any]]:
        """People in one RGB image (H, W, 3) uint8 (grayscale / RGBA / 16-bit are converted)."""
        return self.predict_batch([image])[0]

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[list[dict[str, Any]]]:
        """People in each image; images of the same size go through the network together."""
        imgs = [to_rgb_uint8(im) for im in images]
        results: list[list[dict[str, Any]] | None] = [None] * len(imgs)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, im in enumerate(imgs):
            by_shape.setdefault(im.shape, []).append(i)
        for idx in by_shape.values():
            for i, people in zip(idx, self._run([imgs[i] for i in idx])):
                results[i] = people
        return results  # type: ignore[return-value]

    def network_input(self, image: np.ndarray) -> tuple[Any, ResizeGeometry]:
        """The network's input for one image at scale 1 (resized, padded, normalised: a (1, 3, H, W)
        tensor or array, in the backend's own type) and its resize geometry, for inspection."""
        xs, geoms, base = self._preprocess([to_rgb_uint8(image)])
        return xs[self.scales.index(1.0) if 1.0 in self.scales else 0], base

    def maps(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, ResizeGeometry]:
        """The decoder's inputs for one image: heatmaps (K, H, W), tags (K, H, W, L) at the
        chain's size (the resized input's; the fast chain: half of it), and the resize geometry
        (for :func:`litepose.decode.testtime.to_image`, with :meth:`map_size`)."""
        xs, geoms, base = self._preprocess([to_rgb_uint8(image)])
        hm, tags = self._merge(self._network(xs), base)
        return _numpy(hm[0]), _numpy(tags[0]), geoms[-1]

    def map_size(self, base: ResizeGeometry) -> tuple[int, int]:
        """(width, height) of the maps the decoder groups, for the resized input of ``base``."""
        w, h = base.size
        return (w // 2, h // 2) if self.chain == "fast" else (w, h)

    # -- stages ------------------------------------------------------------------------------------

    def _sync(self) -> None:
        self.backend.sync()

    def _preprocess(self, imgs: list[np.ndarray]) -> tuple[list[Any], list[ResizeGeometry], ResizeGeometry]:
        """Network inputs per scale, their geometries, and the geometry of scale 1.0 (the size
        every scale's maps are brought to)."""
        h, w = imgs[0].shape[:2]
        fixed = self.backend.static_size
        if fixed:  # a network of one input size: the whole image letterboxed into it, one scale
            base = square_geometry(h, w, fixed)
            return [self.backend.inputs(np.stack([resize_image(im, base) for im in imgs]))], [base], base
        min_scale = min(self.scales)
        base = resize_geometry(h, w, self.input_size, 1.0, min_scale)
        xs, geoms = [], []
        for s in self.scales:
            g = resize_geometry(h, w, self.input_size, s, min_scale)
            batch = np.stack([resize_image(im, g) for im in imgs])
            xs.append(self.backend.inputs(batch))
            geoms.append(g)
        return xs, geoms, base

    def _network(self, xs: list[Any]) -> list[tuple[list[Any], list[Any] | None]]:
        return [self.backend.run(x, self.flip_test) for x in xs]

    def _merge(self, outs: list[tuple[list[Any], list[Any] | None]], base: ResizeGeometry) -> tuple[Any, Any]:
        w, h = self.map_size(base)
        per_scale = []
        for s, (out, flipped) in zip(self.scales, outs):
            hms, tags = tt.merge_outputs(
                out, self.num_joints, (h, w), flipped, self.keypoints.flip_index, self.decoder_settings["threads"]
            )
            per_scale.append((s, hms, tags))
        return tt.aggregate(per_scale)

    def _run(self, imgs: list[np.ndarray]) -> list[list[dict[str, Any]]]:
        t0 = time.perf_counter()
        xs, geoms, base = self._preprocess(imgs)
        self._sync()
        t1 = time.perf_counter()
        outs = self._network(xs)
        self._sync()
        t2 = time.perf_counter()
        hm, tags = self._merge(outs, base)
        hm_np, tags_np = _numpy(hm), _numpy(tags)
        map_size = self.map_size(base)
        results = []
        geometry = geoms[-1]  # the original back-projects with the smallest scale's geometry
        for i in range(len(imgs)):
            kpts, scores = group(hm_np[i], tags_np[i], **self.decoder_settings)
            kpts = tt.to_image(kpts, geometry, map_size)
            boxes = people_boxes(kpts)
            results.append(
                [
                    {"keypoints": kpts[p], "score": float(scores[p]), "box": tuple(float(v) for v in boxes[p])}
                    for p in range(len(kpts))
                ]
            )
        t3 = time.perf_counter()
        self.timings.add(
            {"preprocess": (t1 - t0) * 1e3, "network": (t2 - t1) * 1e3, "decode": (t3 - t2) * 1e3}, len(imgs)
        )
        return results
