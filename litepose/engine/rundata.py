"""A run's training data: SynthPose generated when asked, the training set read and checked, its
images cached, and the one DataLoader whose batches depend only on ``(seed, epoch, index)``.

Each epoch's randomness (shuffle order, input sizes, augmentation) derives from the seed, the epoch
and the rank only (:func:`epoch_seed`, :func:`sample_seed`), so a resumed run sees exactly the
batches an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, Sampler

from ..data.dataset import KeypointDataset, MultiSizeBatchSampler
from ..normalization import IMAGENET
from . import distributed as D
from .config import TrainConfig

__all__ = [
    "TRAINING_NORMALIZATION",
    "epoch_seed",
    "seed_all",
    "sample_seed",
    "EpochBatchSampler",
    "ensure_synthpose",
    "training_dataset",
    "cache_images",
    "auto_workers",
    "make_loader",
]

#: The input statistics training normalises with (:func:`litepose.normalization.network_input` on the
#: loader's uint8 batches, as the training transform would): built into the trained model, so that its
#: checkpoints record them and inference uses them.
TRAINING_NORMALIZATION = IMAGENET


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of one rank's epoch (and of the subnets sampled at one step)."""
    return (seed * 1_000_003 + epoch * 7919 + rank * 104_729) % (2**31)


def seed_all(s: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The augmentation seed of sample ``index`` in ``epoch``: one per sample and epoch, whatever the rank."""
    return int(np.random.SeedSequence([seed % 2**63, epoch, index]).generate_state(1, np.uint64)[0] >> 1)


class EpochBatchSampler(Sampler[list[tuple[int, int | None, int]]]):
    """This rank's batches as ``(index, input size or None, augmentation seed)`` triples.

    Call ``set_epoch`` before each epoch: the shuffle order (the DistributedSampler's), the
    input size of each batch (supernet: :class:`MultiSizeBatchSampler` over ``sizes``, the same
    on every rank) and every sample's augmentation seed derive from ``(seed, epoch, index)``
    only. The seeds travel with the indices, so one DataLoader with persistent workers serves
    every epoch and a resumed run sees the same samples whatever state the workers' own
    generators are in.
    """

    def __init__(
        self, sampler: DistributedSampler, batch_size: int, drop_last: bool, sizes: list[int] | None, seed: int
    ) -> None:
        self.sampler = sampler
        self.seed = seed
        self.epoch = 0
        self.sized = MultiSizeBatchSampler(sampler, batch_size, sizes, drop_last, seed) if sizes else None
        self.batches = self.sized if self.sized is not None else BatchSampler(sampler, batch_size, drop_last)
        self.skip = 0  # batches to leave out at the start of the next iteration (a run resumed mid-epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        if self.sized is not None:
            self.sized.generator.manual_seed(epoch_seed(self.seed, self.epoch))
        skip, self.skip = self.skip, 0
        for k, batch in enumerate(self.batches):  # skipped batches still draw their input sizes
            if k < skip:
                continue
            if self.sized is not None:
                yield [(i, size, sample_seed(self.seed, self.epoch, i)) for i, size in batch]
            else:
                yield [(int(i), None, sample_seed(self.seed, self.epoch, int(i))) for i in batch]


def ensure_synthpose(cfg: TrainConfig, main: bool, resuming: bool, log: Callable[[str], None]) -> None:
    """Generate the SynthPose splits that ``data.synthpose`` asks for and that are missing (rank 0;
    every rank waits). A folder that is not :func:`~litepose.data.synth.synthpose_current` but
    SynthPose of an older version is regenerated, except when ``resuming`` a run (which goes on with
    the data it was trained on, or is refused); a dataset of the user's own is never touched."""
    d = cfg.data
    if not d.synthpose:
        return
    if main:
        from ..data.synth import SYNTHPOSE_VERSION, make_synthpose, synthpose_current, synthpose_version

        for split, path in (("train", d.train), ("val", d.val)):
            n = d.synthpose.get(f"{split}_images")
            if not (path and n):
                continue
            found = (Path(path) / "annotations.json").is_file()
            version = synthpose_version(path) if found else None
            if found and (resuming or version is None or synthpose_current(path)):
                continue
            seed = int(d.synthpose.get(f"{split}_seed", 0 if split == "train" else 1))
            why = f"regenerating SynthPose v{version} as v{SYNTHPOSE_VERSION}" if found else "generating SynthPose"
            log(f"{why} {split}: {n} images, seed {seed} -> {path}")
            make_synthpose(path, int(n), seed=seed)
    D.barrier()


def training_dataset(cfg: TrainConfig, input_size: int, main: bool) -> KeypointDataset:
    """``data.train`` as a dataset of uint8 images (normalised on the training device), its image files
    checked and the unreadable ones left out."""
    d = cfg.data
    # uint8 images from the loader (a quarter of the bytes), normalised on the device in the step
    tcfg = dataclasses.replace(cfg.transform_config(input_size), normalize=False)
    dataset = KeypointDataset(d.train, d.train_images, keypoints=d.keypoints, transform=tcfg)
    if len(dataset) == 0:
        raise ValueError(f"{d.train}: no training images with annotations")
    dataset.annotations.check_images(dataset.image_ids, "training images")
    _drop_unreadable(dataset, cfg, main)
    return dataset


def _drop_unreadable(dataset: KeypointDataset, cfg: TrainConfig, main: bool) -> None:
    """Leave out the training images that cannot be read (headers checked, no pixels decoded),
    with one warning naming them, before the first step rather than an error mid-epoch. Rank 0
    checks and every rank drops the same images."""
    bad = dataset.unreadable(progress=main and len(dataset) >= 5000) if main else None
    bad = D.broadcast_object(bad)
    if not bad:
        return
    from ..files import shown

    ann, ids = dataset.annotations, dataset.image_ids
    if len(bad) == len(ids):
        first = shown(ann.image_path(ids[bad[0][0]]))
        raise ValueError(
            f"{cfg.data.train}: none of its {len(ids)} training images can be read, e.g. {first}: {bad[0][1]}"
        )
    if main:
        import warnings

        listed = "; ".join(f"{shown(ann.image_path(ids[i]))}: {why}" for i, why in bad[:5])
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        warnings.warn(
            f"{len(bad)} of the {len(ids)} training images cannot be read and are left out: {listed}{more}",
            RuntimeWarning,
            stacklevel=3,
        )
    dataset.drop(i for i, _ in bad)


def cache_images(dataset: KeypointDataset, cfg: TrainConfig, main: bool, log: Callable[[str], None]) -> None:
    """Decode up to ``data.cache_mb`` of training images into memory once, before the loader's
    workers fork (they share the pages)."""
    mb = cfg.data.cache_mb
    if not mb or mb <= 0:
        return
    n = dataset.cache_images(mb, progress=main)
    rest = len(dataset) - n
    tail = f"; the other {rest} are read from disk each time (raise data.cache_mb to hold them)" if rest else ""
    log(f"{n} of {len(dataset)} training images cached in memory (data.cache_mb={mb:g}){tail}")


def auto_workers(cfg: TrainConfig, device: torch.device) -> int:
    """``data.workers``, or when it is None (auto): 0 (loading in the training process) when
    training on a CPU with at most 2 cores, else 2. On a 2-core CPU the compute threads use
    both cores, and a loader process there takes its time from them: a step measured ~20 %
    slower than with loading in-process (docs/training.md)."""
    w = cfg.data.workers
    if w is not None:
        return max(0, int(w))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 0 if device.type == "cpu" and cores <= 2 else 2


def make_loader(
    cfg: TrainConfig, dataset: KeypointDataset, dist: Any, sizes: list[int] | None, workers: int
) -> DataLoader:
    """The one DataLoader of the run; ``loader.batch_sampler.set_epoch(e)`` before each epoch.

    Workers persist across epochs (no re-spawn, no slow first step): the per-sample seeds
    come with the indices (:class:`EpochBatchSampler`), not from the workers' generators.
    ``sizes``: the supernet's input sizes (None: the dataset's one size).
    """
    bs, seed = cfg.train.batch_size, cfg.train.seed
    sampler = DistributedSampler(dataset, dist.world_size, dist.rank, shuffle=True, seed=seed, drop_last=True)
    batches = EpochBatchSampler(sampler, bs, len(sampler) >= bs, sizes, seed)
    gen = torch.Generator().manual_seed(epoch_seed(seed, 0, dist.rank))
    return DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=workers,
        generator=gen,
        persistent_workers=workers > 0,
        pin_memory=dist.device.type == "cuda",
    )
