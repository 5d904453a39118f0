"""``KeypointDataset``: a torch Dataset of training samples over a COCO-format keypoint file.

Stable API::

    from litepose.data.dataset import KeypointDataset, MultiSizeBatchSampler
    from litepose.data.transforms import TransformConfig

    ds = KeypointDataset("person_keypoints_train2017.json", images=None, keypoints=None,
                         transform=TransformConfig(input_size=256), keep_empty=False)
    ds.annotations      # the KeypointAnnotations (litepose.data.coco) it reads
    ds.keypoints        # KeypointSet; ds.num_joints = K
    ds.image_ids        # the images it serves, in file order
    sample = ds[i]      # or ds[(i, input_size)] to pick the input size of this sample,
                        # or ds[(i, input_size_or_None, seed)] to fix its augmentation seed
    ds.load(i)          # the untransformed record (see below)
    ds.cache_images(max_mb=1024)   # keep decoded images (and crowd masks) in memory

A sample (``transform`` set) is a dict of tensors, collated by torch's default collate::

    "image":    float32 (3, S, S), RGB/255 normalised with ImageNet mean/std (S = input size);
                uint8 (3, S, S) RGB with ``TransformConfig(normalize=False)`` (4x fewer bytes
                from a loader process; :func:`litepose.normalization.network_input` normalises)
    "heatmaps": [float32 (K, S/4, S/4), float32 (K, S/2, S/2)]   Gaussian targets, sigma 2
    "masks":    [float32 (S/4, S/4), float32 (S/2, S/2)]          1 = counted, 0 = ignored
    "joints":   [int64 (30, K, 2), int64 (30, K, 2)]              joint index tables
    "image_id": int

(one list entry per stride of ``TransformConfig.strides``, default (4, 2), in that order). With
``transform=None`` a sample is ``ds.load(i)``: ``{"image": RGB uint8 (H, W, 3), "mask": bool
(H, W), "joints": float64 (P, K, 3) image pixels, "image_id"}`` (not collatable: sizes vary).

Unreadable images: :meth:`KeypointDataset.unreadable` finds, from headers only, the images that
cannot be read (missing, empty, broken header) so that a trainer can :meth:`~KeypointDataset.drop`
them before it starts; an image that still fails to decode in a transformed sample (corrupt data
past a sound header, another size than its entry says) is skipped with one warning naming it and
the next readable sample is served in its place, rather than the error ending a training run
mid-epoch. ``load`` itself raises.

Images with no annotation at all are dropped (as the original's training set) unless
``keep_empty``; images whose only annotations are crowds or people without keypoints stay: their
background is a useful negative. Randomness: each sample draws a seed from torch's generator, so
``torch.manual_seed`` and the DataLoader's per-worker seeding make runs reproducible; an index
``(i, size, seed)`` gives the seed explicitly instead (the trainer derives it from the run seed,
the epoch and the index, so that augmentation does not depend on which worker, or which
persistent worker's generator state, serves the sample).

Supernet training samples one input size per batch: :class:`MultiSizeBatchSampler` yields
batches of ``(index, size)`` pairs for ``DataLoader(ds, batch_sampler=...)``.

Decoding a JPEG is the largest single cost of a sample (about a third of it for SynthPose's
320x256 images). :meth:`KeypointDataset.cache_images` decodes images once, up to a memory budget,
and every later epoch reuses them (read-only arrays). Call it before the DataLoader starts its
workers: forked workers share the cached pages instead of each filling a cache of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from .coco import KeypointAnnotations, load_annotations
from .keypoints import KeypointSet
from .transforms import TrainTransform, TransformConfig, check_input_size

__all__ = ["KeypointDataset", "MultiSizeBatchSampler"]


def _own_bytes(a: np.ndarray) -> int:
    """Memory an array holds itself (0 for a broadcast view)."""
    return 0 if 0 in a.strides else a.nbytes


class KeypointDataset(Dataset):
    """Training samples (augmented image + targets) over a COCO-format keypoint file."""

    def __init__(
        self,
        annotations: str | Path | KeypointAnnotations,
        images: str | Path | None = None,
        *,
        keypoints: KeypointSet | dict | str | Path | None = None,
        transform: TransformConfig | None = TransformConfig(),  # noqa: B008 (frozen dataclass)
        keep_empty: bool = False,
    ) -> None:
        if isinstance(annotations, KeypointAnnotations):
            if images is not None or keypoints is not None:
                raise ValueError("images / keypoints are taken from the given KeypointAnnotations")
            self.annotations = annotations
        else:
            self.annotations = load_annotations(annotations, images, keypoints=keypoints)
        self.keypoints: KeypointSet = self.annotations.keypoints
        ids = self.annotations.image_ids
        if not keep_empty:
            ids = [i for i in ids if self.annotations.annotations(i)]
        self.image_ids: list[int] = ids
        self.config = transform
        self.transform = TrainTransform(transform, self.keypoints.flip_index) if transform is not None else None
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._bad: set[int] = set()  # samples whose image failed to decode (skipped, see _load_readable)

    @property
    def num_joints(self) -> int:
        return self.keypoints.num_joints

    def __len__(self) -> int:
        return len(self.image_ids)

    def __repr__(self) -> str:
        return f"KeypointDataset({str(self.annotations.path)!r}, images={len(self)}, joints={self.num_joints})"

    def unreadable(self, progress: bool = False) -> list[tuple[int, str]]:
        """The samples whose image cannot be read, found cheaply before training: the file is
        missing or empty, or its header is broken or too large (:func:`litepose.media.check_image`;
        headers only, no pixels are decoded). Returns ``(index, why)`` pairs; :meth:`drop` them."""
        from tqdm import tqdm

        from ..media import check_image

        ann = self.annotations
        bad = []
        for index, iid in enumerate(tqdm(self.image_ids, desc="checking images", unit="img", disable=not progress)):
            why = check_image(ann.image_path(iid))
            if why is not None:
                bad.append((index, why))
        return bad

    def drop(self, indices: Iterable[int]) -> None:
        """Leave the samples ``indices`` out (before any caching or loading: indices shift)."""
        gone = set(indices)
        if gone:
            self.image_ids = [iid for i, iid in enumerate(self.image_ids) if i not in gone]
            self._cache, self._bad = {}, set()

    @property
    def cached(self) -> int:
        """How many images :meth:`cache_images` holds in memory."""
        return len(self._cache)

    def cache_images(self, max_mb: float, progress: bool = False) -> int:
        """Decode the images (and their crowd masks) into memory, in index order, until ``max_mb``
        megabytes are used; returns how many are cached. Images past the budget are read from
        disk each time, as without a cache. The cached arrays are read-only, so a transform that
        tried to change one in place would fail instead of corrupting later epochs. A bad image
        fails here, naming its file, before training starts."""
        from tqdm import tqdm

        budget = float(max_mb) * 2**20
        used = sum(im.nbytes + _own_bytes(mk) for im, mk in self._cache.values())
        ann = self.annotations
        bar = tqdm(total=len(self), desc="caching images", unit="img", disable=not progress)
        try:
            for index, iid in enumerate(self.image_ids):
                if index in self._cache:
                    bar.update()
                    continue
                info = ann.image_info(iid)
                if used + 3 * int(info["width"]) * int(info["height"]) > budget:
                    break  # the header's size: nothing is decoded that would not fit
                try:
                    image, mask = ann.read_image(iid), ann.mask(iid)
                except (ValueError, OSError) as e:  # corrupt pixels past a sound header: skipped in training
                    self._skip(index, e)
                    bar.update()
                    continue
                if mask.all():  # no ignored region: a read-only view of one True, no memory
                    mask = np.broadcast_to(np.ones((1, 1), dtype=bool), mask.shape)
                image.flags.writeable = False
                mask.flags.writeable = False
                self._cache[index] = (image, mask)
                used += image.nbytes + _own_bytes(mask)
                bar.update()
        finally:
            bar.close()
        return len(self._cache)

    def load(self, index: int) -> dict[str, Any]:
        """The untransformed record of sample ``index`` (image, mask, joints in image pixels); the
        image and mask come from memory when :meth:`cache_images` holds them (read-only then)."""
        iid = self.image_ids[index]
        ann = self.annotations
        hit = self._cache.get(index)
        image, mask = hit if hit is not None else (ann.read_image(iid), ann.mask(iid))
        return {"image": image, "mask": mask, "joints": ann.joints(iid), "image_id": iid}

    def _skip(self, index: int, error: BaseException) -> None:
        """Mark sample ``index`` unreadable, with one warning naming its image."""
        import warnings

        from ..errors import describe

        if index not in self._bad:
            self._bad.add(index)
            warnings.warn(
                f"{describe(error)}: this training image is skipped (another takes its place in the batch)",
                RuntimeWarning,
                stacklevel=3,
            )

    def _load_readable(self, index: int) -> dict[str, Any]:
        """:meth:`load` of sample ``index``, or, when its image cannot be decoded after all (corrupt
        data past a sound header, a size other than the annotations say, a file gone), one warning
        naming it and the next readable sample in its place: one bad file does not stop a
        training run mid-epoch. The replacement depends on the index only (reproducible)."""
        from ..errors import describe

        n = len(self)
        last = None
        for k in range(n):
            i = (index + k) % n
            if i in self._bad:
                continue
            try:
                return self.load(i)
            except (ValueError, OSError) as e:
                self._skip(i, e)
                last = e
        why = f" (the last: {describe(last)})" if last is not None else ""
        raise ValueError(f"{self!r}: none of its images can be read{why}")

    def __getitem__(self, index: int | tuple[int, int | None] | tuple[int, int | None, int]) -> dict[str, Any]:
        size = seed = None
        if isinstance(index, tuple | list):
            size = None if index[1] is None else int(index[1])
            seed = int(index[2]) if len(index) > 2 else None
            index = int(index[0])
        rec = self._load_readable(index) if self.transform is not None else self.load(index)
        if self.transform is None:
            return rec
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        out = self.transform(rec["image"], rec["mask"], rec["joints"], np.random.default_rng(seed), input_size=size)
        return {
            "image": torch.from_numpy(out["image"]),
            "heatmaps": [torch.from_numpy(h) for h in out["heatmaps"]],
            "masks": [torch.from_numpy(m) for m in out["masks"]],
            "joints": [torch.from_numpy(j) for j in out["joints"]],
            "image_id": rec["image_id"],
        }


class MultiSizeBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of ``(index, input_size)`` with one random size per batch (supernet training).

    Args:
        sampler: the indices to batch (e.g. ``RandomSampler(ds)``), or a dataset length.
        batch_size: samples per batch.
        sizes: input sizes to choose from (e.g. ``range(256, 513, 64)``), uniformly per batch.
        drop_last: drop the last incomplete batch.
        seed: seeds the size choice (a fresh stream of sizes each epoch, reproducible).
    """

    def __init__(
        self,
        sampler: Iterable[int] | int,
        batch_size: int,
        sizes: Sequence[int],
        drop_last: bool = True,
        seed: int = 0,
        strides: tuple[int, ...] = (4, 2),
    ) -> None:
        self.sampler = range(sampler) if isinstance(sampler, int) else sampler
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.sizes = [int(s) for s in sizes]
        if not self.sizes:
            raise ValueError("sizes is empty")
        for s in self.sizes:
            check_input_size(s, strides)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        batch: list[int] = []
        for i in self.sampler:
            batch.append(int(i))
            if len(batch) == self.batch_size:
                yield self._sized(batch)
                batch = []
        if batch and not self.drop_last:
            yield self._sized(batch)

    def _sized(self, batch: list[int]) -> list[tuple[int, int]]:
        s = self.sizes[int(torch.randint(len(self.sizes), (1,), generator=self.generator))]
        return [(i, s) for i in batch]
