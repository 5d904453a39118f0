"""The trainer: one loop for normal training, supernet training, fine-tuning and distillation.

Single process (``litepose train``) or DDP under ``torchrun`` (``torchrun --nproc_per_node N -m
litepose train ...``): DistributedSampler, validation shared by the ranks, rank-0 logging /
checkpoints, optional SyncBatchNorm, AMP on CUDA. Whether to validate or stop (time limit) is
decided on rank 0 and broadcast, so the ranks always take the same collectives. Each epoch's
randomness (shuffle order, augmentation, subnet sampling) depends only on ``(seed, epoch,
rank)``, and a training-state checkpoint is written atomically after every epoch, so a resumed
run continues exactly as if it had never stopped (a run killed mid-epoch loses at most that epoch).
Before the first step the config's values and every path it names (train and val data with their
image files, ``model.pretrained``, ``loss.teacher``) are checked, and temporary files that killed
checkpoint writes left in the run folder are removed.

Outputs in the run folder: ``last.pth`` (training state; also loadable by
``litepose.load_checkpoint``), ``best.pth`` (self-describing model with the best val AP),
``metrics.jsonl`` (one line per epoch), ``config.yaml``, ``curves.png``, and TensorBoard events
under ``tb/`` when tensorboard is installed. Fixed-subnet training (``supernet.arch`` with the
supernet) writes the standalone subnet as that model; supernet training validates one subnet
(``val.arch``) after recalibrating its BatchNorm.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, Sampler

from .. import interrupt
from ..data.dataset import KeypointDataset, MultiSizeBatchSampler
from ..data.jsonio import parse_json
from ..files import FolderBusy, FolderLock, remove_stale_temps
from ..models import SuperLitePose, create_model, load_checkpoint, save_checkpoint
from ..models.checkpoint import CheckpointError, read_state_dict
from ..models.space import SearchSpace
from ..models.spec import ArchSpec, check_input_size, resolve_spec, spec_name
from ..models.supernet import extract_subnet
from ..normalization import network_input
from . import distributed as D
from .checkpoint import (
    load_training_state,
    restore_rng_state,
    restore_training_state,
    save_training_state,
    unwrap_model,
)
from .config import TrainConfig, is_supernet, resume_differences
from .cputune import cpu_training_settings
from .loss import LitePoseLoss, heatmap_distillation_loss, tag_separation
from .schedule import SCHEDULES, CosineSchedule

__all__ = ["Trainer", "load_backbone"]

HEAD_PREFIXES = ("deconv", "final")
#: Under AMP, how many steps in a row may have a non-finite loss (each skipped, as GradScaler skips
#: an overflowing step) before the run stops as diverged (docs/training.md).
MAX_NONFINITE_STEPS = 10
#: The checkpoints a run writes (atomically) into its folder.
CHECKPOINT_NAMES = ("last.pth", "best.pth")


def load_backbone(model: nn.Module, path: str | Path, *, head: bool = False) -> int:
    """Fine-tuning init, as the original: load every tensor but the head (``deconv*``, ``final*``).

    ``head=True`` loads the head too (``model.pretrained_head``): for a subnet transferred from
    a supernet, whose head was trained with its backbone. Returns the number of tensors loaded;
    shape mismatches are a clear error.
    """
    sd, _ = read_state_dict(path)
    own = model.state_dict()
    picked = {}
    for k, v in sd.items():
        if (k.startswith(HEAD_PREFIXES) and not head) or k not in own:
            continue
        if tuple(v.shape) != tuple(own[k].shape):
            part = "head" if k.startswith(HEAD_PREFIXES) else "backbone"
            raise CheckpointError(
                f"{path}: {part} key {k!r} expected shape {tuple(own[k].shape)}, found {tuple(v.shape)}"
            )
        picked[k] = v.float() if v.is_floating_point() else v
    if not picked:
        raise CheckpointError(f"{path}: no backbone tensor fits the model")
    model.load_state_dict(picked, strict=False)
    return len(picked)


def _epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    return (seed * 1_000_003 + epoch * 7919 + rank * 104_729) % (2**31)


def _seed_all(s: int) -> None:
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


def _sample_seed(seed: int, epoch: int, index: int) -> int:
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
            self.sized.generator.manual_seed(_epoch_seed(self.seed, self.epoch))
        skip, self.skip = self.skip, 0
        for k, batch in enumerate(self.batches):  # skipped batches still draw their input sizes
            if k < skip:
                continue
            if self.sized is not None:
                yield [(i, size, _sample_seed(self.seed, self.epoch, i)) for i, size in batch]
            else:
                yield [(int(i), None, _sample_seed(self.seed, self.epoch, int(i))) for i in batch]


class Trainer:
    """Train a LitePose (or its supernet) from a :class:`TrainConfig` into ``output``.

    ``resume``: ``"auto"`` (continue from ``output/last.pth`` if present), ``None`` (start
    fresh; refuses to overwrite an existing run) or a path to a training state.
    """

    def __init__(self, cfg: TrainConfig, output: str | Path, resume: str | Path | None = "auto") -> None:
        self.cfg = cfg
        self.out = Path(output)
        self.resume = resume
        self.dist = D.setup(cfg.train.device, cfg.train.dist_timeout_min)
        self.main = self.dist.is_main
        self.device = self.dist.device
        self.history: list[dict[str, Any]] = []
        self._val_ann: Any = None  # the val annotations, loaded (and checked) by _build
        self._partial: dict[str, Any] | None = None  # resumed mid-epoch: where (see _save_last)
        self.summary: dict[str, Any] | None = None  # set when a signal stopped the run (fit raised)
        self._nonfinite_steps = 0  # AMP: steps in a row skipped for a non-finite loss

    # -- building -------------------------------------------------------------------------------

    def _build(self, resuming: bool = False) -> None:
        """The data, model, optimizer, schedule and loss of the run; ``resuming``: a training state
        will be restored (existing SynthPose data is then never regenerated)."""
        cfg = self.cfg
        cfg.check()
        if not cfg.data.train:
            raise ValueError("config: data.train is empty (a COCO-format JSON or a SynthPose folder)")
        arch = cfg.model.arch
        self.is_super = is_supernet(arch)
        if self.is_super:
            base_size = max(cfg.supernet.sizes)
        else:
            base_size = resolve_spec(arch)[1].input_size
        self.input_size = check_input_size(cfg.model.input_size or base_size, "config: model.input_size")
        d = cfg.data
        self._ensure_synthpose(resuming)
        # uint8 images from the loader (a quarter of the bytes), normalised on the device in _step
        tcfg = dataclasses.replace(cfg.transform_config(self.input_size), normalize=False)
        self.dataset = KeypointDataset(d.train, d.train_images, keypoints=d.keypoints, transform=tcfg)
        if len(self.dataset) == 0:
            raise ValueError(f"{d.train}: no training images with annotations")
        self.dataset.annotations.check_images(self.dataset.image_ids, "training images")
        self._drop_unreadable()
        k = self.dataset.num_joints
        self._check_val_data(k)
        _seed_all(cfg.train.seed)  # the same initial weights on every rank and every run
        model = SuperLitePose(k) if self.is_super else create_model(arch, num_joints=k)
        model.keypoints = self.dataset.keypoints
        if not self.is_super:
            model.input_size = self.input_size
        self.fixed_arch = None
        if self.is_super and cfg.supernet.arch:
            self.fixed_arch = model.set_arch(cfg.supernet.arch)
        self.val_spec = self._val_spec(model) if self.is_super else None
        self.val_info: dict[str, Any] = {}
        if cfg.model.head_init_std is not None:
            from ..models.litepose import init_output_layers

            init_output_layers(model, cfg.model.head_init_std)
        if cfg.model.pretrained:
            n = load_backbone(model, cfg.model.pretrained, head=cfg.model.pretrained_head)
            what = "backbone and head" if cfg.model.pretrained_head else "backbone"
            fresh = "" if cfg.model.pretrained_head else " (head initialised fresh)"
            self._log(f"fine-tuning: {n} {what} tensors from {cfg.model.pretrained}{fresh}")
        # channels_last: about 2x faster training of the depthwise-heavy network on CPU (and fine on GPU).
        model.to(self.device, memory_format=torch.channels_last)
        if self.dist.enabled and cfg.model.sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(
                model, device_ids=ids, find_unused_parameters=self.is_super
            )
        t = cfg.train
        optimizers = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
        if t.optimizer not in optimizers:
            raise ValueError(f"config: train.optimizer {t.optimizer!r} is not one of {sorted(optimizers)}")
        # fused: one kernel for the whole update instead of a dozen ops per tensor (CPU and CUDA)
        fused = self.device.type in ("cpu", "cuda")
        self.optimizer = optimizers[t.optimizer](
            self.model.parameters(), lr=t.lr, weight_decay=t.weight_decay, fused=fused or None
        )
        if t.schedule not in SCHEDULES:
            raise ValueError(f"config: train.schedule {t.schedule!r} is not one of {list(SCHEDULES)}")
        self.per_step_schedule = t.schedule == "cosine"
        if self.per_step_schedule:
            per_epoch = max(1, len(self.dataset) // (t.batch_size * self.dist.world_size))
            if t.max_steps_per_epoch:
                per_epoch = min(per_epoch, t.max_steps_per_epoch)
            self.steps_per_epoch = per_epoch
            self.scheduler = CosineSchedule(self.optimizer, t.epochs * per_epoch, t.warmup_steps, t.min_lr_factor)
        else:
            self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
                self.optimizer, milestones=list(t.lr_steps), gamma=t.lr_factor
            )
        self.amp = bool(t.amp and self.device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda") if self.amp else None
        lc = cfg.loss
        self.loss = LitePoseLoss(
            k, lc.heatmap_factors, lc.push_factor, lc.pull_factor, lc.push_type, fg_weight=lc.heatmap_fg_weight
        )
        self.teacher = None
        if lc.teacher:
            teacher, info = load_checkpoint(lc.teacher)
            if info["num_joints"] != k:
                raise ValueError(f"teacher {lc.teacher} has {info['num_joints']} joints, the data has {k}")
            self.teacher = teacher.to(self.device).eval()
            self.teacher_size = lc.teacher_input_size

    def _drop_unreadable(self) -> None:
        """Leave out the training images that cannot be read (headers checked, no pixels decoded),
        with one warning naming them, before the first step rather than an error mid-epoch. Rank 0
        checks and every rank drops the same images."""
        bad = self.dataset.unreadable(progress=self.main and len(self.dataset) >= 5000) if self.main else None
        bad = D.broadcast_object(bad)
        if not bad:
            return
        from ..files import shown

        ann, ids = self.dataset.annotations, self.dataset.image_ids
        if len(bad) == len(ids):
            first = shown(ann.image_path(ids[bad[0][0]]))
            raise ValueError(
                f"{self.cfg.data.train}: none of its {len(ids)} training images can be read, e.g. {first}: {bad[0][1]}"
            )
        if self.main:
            import warnings

            listed = "; ".join(f"{shown(ann.image_path(ids[i]))}: {why}" for i, why in bad[:5])
            more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
            warnings.warn(
                f"{len(bad)} of the {len(ids)} training images cannot be read and are left out: {listed}{more}",
                RuntimeWarning,
                stacklevel=2,
            )
        self.dataset.drop(i for i, _ in bad)

    def _check_val_data(self, num_joints: int) -> None:
        """Load ``data.val`` now, with its image files and joint count checked, so that a bad val set
        stops the run before the first step instead of at the end of the first validated epoch."""
        d = self.cfg.data
        if not d.val:
            return
        from ..eval.evaluate import load_eval_data

        ann = load_eval_data(d.val, d.val_images)
        if ann.num_joints != num_joints:
            raise ValueError(f"config: data.val {d.val} has {ann.num_joints} joints, data.train has {num_joints}")
        ann.check_images(what="val images")
        self._val_ann = ann

    def _ensure_synthpose(self, resuming: bool = False) -> None:
        """Generate the SynthPose splits that ``data.synthpose`` asks for and that are missing (rank 0);
        SynthPose of an older version is regenerated, except when ``resuming`` a run (which goes on
        with the data it was trained on, or is refused by :meth:`_check_data_version`)."""
        d = self.cfg.data
        if not d.synthpose:
            return
        known = {"train_images", "val_images", "train_seed", "val_seed"}
        unknown = set(d.synthpose) - known
        if unknown:
            raise ValueError(f"config: unknown key(s) {sorted(unknown)} in data.synthpose (known: {sorted(known)})")
        if self.main:
            from ..data.synth import SYNTHPOSE_VERSION, make_synthpose, synthpose_version

            for split, path in (("train", d.train), ("val", d.val)):
                n = d.synthpose.get(f"{split}_images")
                if not (path and n):
                    continue
                found = (Path(path) / "annotations.json").is_file()
                version = synthpose_version(path) if found else None
                if found and (resuming or version in (None, SYNTHPOSE_VERSION)):
                    continue  # current SynthPose, a dataset of the user's own, or a resumed run's: never touched
                seed = int(d.synthpose.get(f"{split}_seed", 0 if split == "train" else 1))
                why = f"regenerating SynthPose v{version} as v{SYNTHPOSE_VERSION}" if found else "generating SynthPose"
                self._log(f"{why} {split}: {n} images, seed {seed} -> {path}")
                make_synthpose(path, int(n), seed=seed)
        D.barrier()

    def _cache_images(self) -> None:
        """Decode up to ``data.cache_mb`` of training images into memory once, before the loader's
        workers fork (they share the pages)."""
        mb = self.cfg.data.cache_mb
        if not mb or mb <= 0:
            return
        n = self.dataset.cache_images(mb, progress=self.main)
        rest = len(self.dataset) - n
        tail = f"; the other {rest} are read from disk each time (raise data.cache_mb to hold them)" if rest else ""
        self._log(f"{n} of {len(self.dataset)} training images cached in memory (data.cache_mb={mb:g}){tail}")

    def num_workers(self) -> int:
        """``data.workers``, or when it is None (auto): 0 (loading in the training process) when
        training on a CPU with at most 2 cores, else 2. On a 2-core CPU the compute threads use
        both cores, and a loader process there takes its time from them: a step measured ~20 %
        slower than with loading in-process (docs/training.md)."""
        w = self.cfg.data.workers
        if w is not None:
            return max(0, int(w))
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return 0 if self.device.type == "cpu" and cores <= 2 else 2

    def _loader(self) -> DataLoader:
        """The one DataLoader of the run; ``loader.batch_sampler.set_epoch(e)`` before each epoch.

        Workers persist across epochs (no re-spawn, no slow first step): the per-sample seeds
        come with the indices (:class:`EpochBatchSampler`), not from the workers' generators.
        """
        cfg = self.cfg
        bs = cfg.train.batch_size
        n_rep, rank = self.dist.world_size, self.dist.rank
        sampler = DistributedSampler(self.dataset, n_rep, rank, shuffle=True, seed=cfg.train.seed, drop_last=True)
        drop = len(sampler) >= bs
        sizes = None
        if self.is_super:
            sizes = [self.fixed_arch.input_size] if self.fixed_arch is not None else list(cfg.supernet.sizes)
        batches = EpochBatchSampler(sampler, bs, drop, sizes, cfg.train.seed)
        workers = self.num_workers()
        gen = torch.Generator().manual_seed(_epoch_seed(cfg.train.seed, 0, rank))
        return DataLoader(
            self.dataset,
            batch_sampler=batches,
            num_workers=workers,
            generator=gen,
            persistent_workers=workers > 0,
            pin_memory=self.device.type == "cuda",
        )

    # -- logging --------------------------------------------------------------------------------

    def _log(self, msg: str) -> None:
        if self.main:
            print(msg, file=sys.stderr, flush=True)

    def _write_metrics(self, row: dict[str, Any]) -> None:
        self.history.append(row)
        if not self.main:
            return
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k not in ("epoch",):
                    self.tb.add_scalar(k, v, row["epoch"])

    # -- one step -------------------------------------------------------------------------------

    def _subnets(self, step: int) -> list[Any]:
        """The subnets trained at this step (None = the plain network)."""
        if not self.is_super:
            return [None]
        if self.fixed_arch is not None:
            return [self.fixed_arch]
        sc = self.cfg.supernet
        rng = random.Random(_epoch_seed(self.cfg.train.seed, step))
        bare = unwrap_model(self.model)
        space = SearchSpace.from_config(sc, bare.max_spec)
        archs = [space.sample(rng)]
        if sc.sandwich:
            big = space.replace(widths=(max(sc.widths),), kernels=(max(sc.kernels),)).sample(rng)
            small = space.replace(widths=(min(sc.widths),), kernels=(min(sc.kernels),)).sample(rng)
            archs = [big, small, *archs]
        for a in archs:
            bare.check_arch(a)
        return archs

    def _step(self, batch: dict[str, Any], step: int) -> dict[str, float] | None:
        """One optimizer step; returns the loss terms, or None for a step skipped under AMP because
        its loss was not finite (on any rank: :meth:`_finite_everywhere`; raised after
        :data:`MAX_NONFINITE_STEPS` in a row)."""
        dev = self.device
        images = network_input(batch["image"].to(dev, non_blocking=True))
        heatmaps = [h.to(dev, non_blocking=True) for h in batch["heatmaps"]]
        masks = [m.to(dev, non_blocking=True) for m in batch["masks"]]
        joints = batch["joints"][0].to(dev, non_blocking=True)
        t_heat = None
        if self.teacher is not None:
            with torch.no_grad():
                x_t = images
                if self.teacher_size and self.teacher_size != images.shape[-1]:
                    x_t = nn.functional.interpolate(images, size=(self.teacher_size,) * 2, mode="bilinear")
                t_out = self.teacher(x_t)
            k = self.dataset.num_joints
            t_heat = [o[:, :k] for o in t_out]
        self.optimizer.zero_grad(set_to_none=True)
        archs = self._subnets(step)
        stats: dict[str, float] = {}
        nonfinite = False
        for arch in archs:
            ctx = torch.autocast("cuda", dtype=torch.float16) if self.amp else nullcontext()
            with ctx:
                outputs = self.model(images) if arch is None else self.model(images, arch)
                res = self.loss(outputs, heatmaps, masks, joints)
                total = res["total"]
                if t_heat is not None:
                    k = self.dataset.num_joints
                    dl = sum(
                        heatmap_distillation_loss(o[:, :k].float(), t, m).mean()
                        for o, t, m in zip(outputs, t_heat, masks)
                    )
                    total = total + self.cfg.loss.distill_factor * dl
                    stats["distill"] = stats.get("distill", 0.0) + float(dl.detach())
            if not self._finite_everywhere(total, step):  # raises, except under AMP
                nonfinite = True
            if self.scaler is not None:
                self.scaler.scale(total).backward()  # non-finite: GradScaler skips the update below
            else:
                total.backward()
            if nonfinite:
                continue
            for name, v in (
                ("loss", total),
                ("heatmap_4", res["heatmap"][0]),
                ("heatmap_2", res["heatmap"][1]),
                ("push", res["push"]),
                ("pull", res["pull"]),
            ):
                stats[name] = stats.get(name, 0.0) + float(v.detach())
            dist, spread, _ = tag_separation(outputs[0][:, self.dataset.num_joints :], joints)
            stats["tag_dist_sum"] = stats.get("tag_dist_sum", 0.0) + dist
            stats["tag_spread_sum"] = stats.get("tag_spread_sum", 0.0) + spread
        clip = self.cfg.train.grad_clip
        if self.scaler is not None:
            if clip:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            if clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self.optimizer.step()
        if self.per_step_schedule:
            self.scheduler.step()
        if nonfinite:  # AMP: a skipped step; a run of them is a diverged run, not an overflow
            self._nonfinite_steps += 1
            if self._nonfinite_steps >= MAX_NONFINITE_STEPS:
                raise FloatingPointError(
                    f"{self._rank_prefix()}the loss was not finite at {self._nonfinite_steps} steps in a row (up to "
                    f"step {step}; each was skipped, as mixed precision skips a step that overflows): lower "
                    "train.lr, or set train.grad_clip"
                )
            return None
        self._nonfinite_steps = 0
        return {k: v / len(archs) for k, v in stats.items()}

    def _rank_prefix(self) -> str:
        return f"rank {self.dist.rank} of {self.dist.world_size}: " if self.dist.group else ""

    def _finite_everywhere(self, total: torch.Tensor, step: int) -> bool:
        """Whether the loss is finite on every rank (one all-reduce under DDP), so that all ranks
        take the same path: without AMP a non-finite loss anywhere stops every rank at once with
        a ``FloatingPointError`` (a rank raising alone would leave the others waiting in the next
        collective until the timeout); with AMP (a GradScaler) the step is skipped instead."""
        mine = bool(torch.isfinite(total.detach()))
        agreed = D.all_reduce_max(0.0 if mine else 1.0) == 0.0
        if not agreed and self.scaler is None:
            here = f"{float(total.detach())}" if not mine else "finite on this rank, not on another"
            raise FloatingPointError(
                f"{self._rank_prefix()}the loss is not finite at step {step} ({here}): the run diverged; lower "
                "train.lr, or set train.grad_clip"
            )
        return agreed

    def _train_mode(self) -> None:
        self.model.train()
        if self.cfg.train.freeze_bn:
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

    # -- validation -----------------------------------------------------------------------------

    def _val_spec(self, supernet: SuperLitePose) -> ArchSpec:
        """The subnet that supernet validation measures: the fixed subnet, ``val.arch``, else the largest."""
        cfg = self.cfg
        if cfg.val.arch:
            spec = resolve_spec(cfg.val.arch)[1]
            supernet.check_arch(spec)
            if self.fixed_arch is not None and spec != self.fixed_arch:
                raise ValueError(
                    f"config: val.arch {cfg.val.arch!r} differs from supernet.arch {cfg.supernet.arch!r}: "
                    "fixed-subnet training validates and saves the subnet it trains (leave val.arch unset)"
                )
            return spec
        if self.fixed_arch is not None:
            return self.fixed_arch
        return SearchSpace.from_config(cfg.supernet, supernet.max_spec).extreme(largest=True)

    def _export_model(self) -> nn.Module:
        """The model of ``best.pth`` (and the one ``load_checkpoint(last.pth)`` gives).

        The trained network itself, except for fixed-subnet training: the standalone subnet
        (exactly the supernet's function for that arch; its BatchNorm statistics are its own,
        since only that subnet ever ran), so that ``litepose predict --weights best.pth`` runs it.
        """
        bare = unwrap_model(self.model)
        if self.fixed_arch is None:
            return bare
        net = extract_subnet(bare, self.fixed_arch)
        net.input_size = self.fixed_arch.input_size
        return net

    def _val_model(self) -> nn.Module:
        """The network validation measures; sets ``self.val_info`` (what was validated, for checkpoints).

        Supernet training (no fixed subnet): the ``val.arch`` subnet with BatchNorm recalibrated on
        ``val.calib_batches`` training batches, because the supernet's running statistics mix
        every sampled subnet and belong to none of them. The same batches at every validation
        (seeded by ``train.seed``), so APs of different epochs compare.
        """
        from .transfer import calibration_batches, recalibrated_subnet

        if not self.is_super:
            return unwrap_model(self.model)
        spec = self.val_spec
        info: dict[str, Any] = {"val_arch": spec_name(spec), "val_spec": spec.to_json()}
        if self.fixed_arch is not None:
            net = self._export_model()
        else:
            bs, n = self.cfg.train.batch_size, max(0, int(self.cfg.val.calib_batches))
            batches = calibration_batches(self.dataset, None, spec.input_size, n * bs, bs, self.cfg.train.seed)
            net, seen = recalibrated_subnet(unwrap_model(self.model), spec, batches if n else None, self.device)
            info["bn_recalibration_images"] = seen
        self.val_info = info
        return net

    def validate(self) -> dict[str, float] | None:
        """AP on the val set with the current weights (``None`` without val data).

        Collective under torchrun: every rank predicts its share of the val images, rank 0
        scores the gathered results, every rank gets the metrics.
        """
        cfg = self.cfg
        if not cfg.data.val:
            return None
        from ..eval import evaluate
        from ..eval.evaluate import load_eval_data, run_predictor
        from ..predictor import Predictor

        if self._val_ann is None:
            ann = load_eval_data(cfg.data.val, cfg.data.val_images)
            n = cfg.val.max_images
            self._val_ann = ann if n is None or n >= len(ann.image_ids) else ann.subset(ann.image_ids[:n])
        ann = self._val_ann
        net = self._val_model()
        was_training = net.training
        net.eval()
        try:
            pred = Predictor(
                net,
                input_size=self.input_size if not self.is_super else net.input_size,
                flip_test=cfg.val.flip_test,
                detection_threshold=cfg.val.detection_threshold,
                device=str(self.device),
            )
            share = ann.image_ids[self.dist.rank :: self.dist.world_size]
            mine = run_predictor(pred, ann, progress=False, image_ids=share)
        finally:
            net.train(was_training)
        results = [r for part in D.gather_objects(mine) for r in part]
        metrics = None
        if self.main:
            scored = evaluate(results, ann, progress=False)
            metrics = {k: float(v) for k, v in scored.items() if isinstance(v, (int, float))}
        return D.broadcast_object(metrics)

    # -- the run --------------------------------------------------------------------------------

    def fit(self) -> dict[str, Any]:
        """Train to the configured number of epochs (or time limit); returns a summary.

        On CPU, training runs under :func:`~litepose.engine.cputune.cpu_training_settings`
        (denormals flushed to zero, freed memory kept by the allocator). Under DDP a collective that
        waits past ``train.dist_timeout_min``, or a rank that dies, is one clear error naming this
        rank and the timeout (:func:`~litepose.engine.distributed.peer_errors`), not a traceback."""
        with D.peer_errors(), cpu_training_settings(self.device.type == "cpu"), self._own_output():
            return self._fit()

    @contextlib.contextmanager
    def _own_output(self) -> Iterator[None]:
        """Own the output folder for the whole run (:class:`~litepose.files.FolderLock`, rank 0 only),
        so that a second run into it is refused, naming this one, instead of mixing its files with
        ours. A folder that cannot be written is one error naming it. Under DDP rank 0's outcome is
        broadcast: every rank stops together when the folder is not ours."""
        lock = FolderLock(self.out, "train") if self.main else None
        made = not self.out.exists()
        failure: BaseException | None = None
        if lock is not None:
            try:
                lock.acquire()
            except FolderBusy as e:
                failure = e
            except OSError as e:
                failure = OSError(e.errno, f"cannot write in this output folder ({e.strerror or e})", str(self.out))
        message = D.broadcast_object(None if failure is None else str(failure))
        if failure is not None:
            raise failure
        if message is not None:  # another rank: rank 0 could not own the folder
            raise ValueError(f"rank {self.dist.rank}: rank 0 stopped: {message}")
        try:
            yield
        finally:
            if lock is not None:
                lock.release()
                if made:
                    with contextlib.suppress(OSError):
                        self.out.rmdir()  # only if empty: a run refused before writing anything

    def _fit(self) -> dict[str, Any]:
        cfg = self.cfg
        cfg.check()
        state_path, state = self._read_state()  # before anything is built, generated or written
        self._build(resuming=state is not None)
        start_epoch, step, best = self._restore(state_path, state)
        del state
        self._open_run(start_epoch)
        t0 = time.time()
        elapsed_before = self.history[-1]["minutes"] if self.history else 0.0
        if self._partial is not None:  # resumed mid-epoch: the minutes of that epoch's first part too
            elapsed_before = float(self._partial.get("minutes", elapsed_before))

        def clock() -> float:
            """Minutes of the run so far, including those before a resume."""
            return elapsed_before + (time.time() - t0) / 60

        self._announce(start_epoch)
        self._cache_images()
        stopped_early = False
        signum = 0
        loader = self._loader()
        with interrupt.graceful():  # a first SIGINT / SIGTERM stops at the next step boundary
            for epoch in range(start_epoch, cfg.train.epochs):
                step, row, signum = self._train_epoch(loader, epoch, step, best, clock)
                if signum:
                    break
                best, stop = self._end_epoch(epoch, step, row, best, clock)
                if stop:
                    self._log(f"time limit of {cfg.train.time_limit_min} min reached after epoch {epoch + 1}")
                    stopped_early = True
                    break
        del loader  # ends persistent workers now rather than at garbage collection
        if signum:
            self._stopped(signum, epoch, step, best)  # raises interrupt.Stopped
        return self._finish(start_epoch, step, best, stopped_early)

    def _state_path(self) -> Path | None:
        """The training state to continue (``resume``: auto / a path / None), None for a fresh run."""
        last = self.out / "last.pth"
        if self.resume == "auto":
            return last if last.is_file() else None
        if self.resume is not None:
            return Path(self.resume)
        if last.is_file():
            raise ValueError(f"{self.out} already holds a run (last.pth): resume it, or choose another --output")
        return None

    def _read_state(self) -> tuple[Path | None, dict[str, Any] | None]:
        """The training state to resume and its path (``(None, None)``: a fresh run), read before
        anything is built or written, with the config it was trained with compared to this one."""
        path = self._state_path()
        if path is None:
            return None, None
        state = load_training_state(path)
        self._check_resume_config(path, state)
        return path, state

    def _check_resume_config(self, path: Path, state: dict[str, Any]) -> None:
        """Refuse to resume with settings other than the run's own, except :data:`RESUME_CHANGEABLE`
        (its length, time limit, validation, loading and device), which are applied and logged.

        The recorded config is the one in ``last.pth`` (``extra["config"]``), else the
        ``config.yaml`` beside it (files of earlier litepose versions)."""
        recorded = (state.get("extra") or {}).get("config")
        if recorded is None and (path.parent / "config.yaml").is_file():
            try:
                recorded = yaml.safe_load((path.parent / "config.yaml").read_text())
            except (OSError, yaml.YAMLError):
                recorded = None
        self._old_epochs = None
        if not isinstance(recorded, dict):
            self._log(f"notice: {path} records no config: the settings of the run it continues are not compared")
            return
        refused, allowed = resume_differences(recorded, self.cfg.to_dict())
        if refused:
            shown = ", ".join(refused[:6]) + (f" and {len(refused) - 6} more" if len(refused) > 6 else "")
            raise ValueError(
                f"{path}: the run being resumed was trained with other settings: {shown}. A resumed run keeps its "
                "settings (only its length, time limit, validation, loading and device may change: "
                f"docs/training.md): undo the change, or start a new run with another --output "
                f"(model.pretrained={path} model.pretrained_head=true starts it from these weights)"
            )
        if allowed:
            self._log(f"resuming with changed {', '.join(allowed)}")
        old_epochs = (recorded.get("train") or {}).get("epochs")
        if old_epochs is not None and old_epochs != self.cfg.train.epochs:
            self._old_epochs = old_epochs

    def _restore(self, path: Path | None, state: dict[str, Any] | None) -> tuple[int, int, float]:
        """Load ``state`` into the built run; returns (epoch, step, best AP), (0, 0, -1) when fresh."""
        self._partial = None
        if path is None or state is None:
            return 0, 0, -1.0
        r = restore_training_state(
            state, self.model, self.optimizer, self.scheduler, self.scaler, rank=self.dist.rank, where=str(path)
        )
        self._check_data_version(path, r["extra"].get("synthpose_version"))
        partial = r["extra"].get("partial_epoch")
        if partial:  # stopped by a signal mid-epoch: that epoch goes on from the batch it stopped at
            rng = state["rng"]
            mine = rng[self.dist.rank % len(rng)] if isinstance(rng, list) else rng
            self._partial = {**partial, "epoch": r["epoch"], "rng": mine}
            done = partial["batches"]
            self._log(f"resumed from {path}: epoch {r['epoch'] + 1} after {done} of its batches, step {r['step']}")
        else:
            self._log(f"resumed from {path}: epoch {r['epoch']}, step {r['step']}")
        if self.per_step_schedule and getattr(self, "_old_epochs", None) is not None:
            # the cosine decay ends where train.epochs now says (never before the current step)
            self.scheduler.set_horizon(self.cfg.train.epochs * self.steps_per_epoch)
            self._log(
                f"train.epochs {self._old_epochs} -> {self.cfg.train.epochs}: the cosine schedule now ends at step "
                f"{self.scheduler.horizon} (learning rate {self.optimizer.param_groups[0]['lr']:.2e} now)"
            )
        return r["epoch"], r["step"], float(r["extra"].get("best_ap", -1.0))

    def _open_run(self, start_epoch: int) -> None:
        """Rank 0: the output folder, its config.yaml, the metrics history and tensorboard."""
        self.tb = None
        if not self.main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        stale = remove_stale_temps(self.out, CHECKPOINT_NAMES)
        if stale:
            self._log(f"removed {len(stale)} temporary file(s) left by interrupted checkpoint writes in {self.out}")
        (self.out / "config.yaml").write_text(yaml.safe_dump(self.cfg.to_dict(), sort_keys=False))
        self._trim_metrics(start_epoch)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.out / "tb"))
        except Exception:  # tensorboard is optional
            self.tb = None

    def _announce(self, start_epoch: int) -> None:
        cfg = self.cfg
        what = cfg.model.arch
        if self.is_super:
            what = f"subnet {spec_name(self.fixed_arch)} of the supernet" if self.fixed_arch else "supernet"
        group = f" (process group {D.backend()})" if self.dist.group else ""
        self._log(
            f"training {what} on {len(self.dataset)} images "
            f"({self.dataset.num_joints} joints), input {self.input_size}, {self.dist.world_size} process(es)"
            f"{group} on {self.device}, epochs {start_epoch}->{cfg.train.epochs}"
        )
        from ..models import native

        self._log(native.status(self.device.type, supernet=self.is_super))

    def _train_epoch(
        self, loader: Any, epoch: int, step: int, best: float, clock: Callable[[], float]
    ) -> tuple[int, dict[str, Any] | None, int]:
        """One epoch of training steps; returns the step count, the epoch's metrics row (loss
        terms averaged over steps and ranks, tag separation, learning rate) and 0, or, when a
        signal asked to stop (:meth:`_agreed_stop`, checked before every step), ``(step, None,
        signal)`` after saving the state mid-epoch in ``last.pth`` (:meth:`_save_last`)."""
        cfg = self.cfg
        part = self._partial if self._partial is not None and self._partial["epoch"] == epoch else None
        self._partial = None
        if part is not None:  # the generators as they were when the stopped run saved its state
            restore_rng_state(part["rng"])
        else:
            _seed_all(_epoch_seed(cfg.train.seed, epoch, self.dist.rank))
        loader.batch_sampler.set_epoch(epoch)
        skip = int(part["batches"]) if part is not None else 0
        loader.batch_sampler.skip = skip  # the batches the stopped run already trained on
        self._train_mode()
        sums: dict[str, float] = dict(part["sums"]) if part is not None else {}
        n = int(part["n"]) if part is not None else 0
        skipped = int(part.get("skipped", 0)) if part is not None else 0
        limit = cfg.train.max_steps_per_epoch
        total_steps = min(len(loader), limit) if limit else len(loader)
        bar = None
        if self.main:
            from tqdm import tqdm

            desc = f"epoch {epoch + 1}/{cfg.train.epochs}"
            bar = tqdm(total=total_steps, initial=skip, desc=desc, leave=False, file=sys.stderr)
        signum = 0
        for i, batch in enumerate(loader, start=skip):
            if limit and i >= limit:
                break
            signum = self._agreed_stop()
            if signum:
                partial = {"batches": i, "sums": dict(sums), "n": n, "skipped": skipped, "minutes": round(clock(), 3)}
                self._save_last(self.out / "last.pth", epoch, step, best, partial=partial)
                self._stop_point = (i, total_steps)
                break
            stats = self._step(batch, step)
            step += 1
            if stats is None:  # skipped (AMP, non-finite loss): not in the epoch's means
                skipped += 1
            else:
                n += 1
                for k, v in stats.items():
                    sums[k] = sums.get(k, 0.0) + v
            if bar is not None:
                bar.update(1)
                if n:
                    bar.set_postfix(loss=f"{sums['loss'] / n:.5f}")
        if bar is not None:
            bar.close()
        if signum:
            return step, None, signum
        if not self.per_step_schedule:
            self.scheduler.step()
        avg = D.all_reduce_mean(torch.tensor([sums.get(k, 0.0) / max(n, 1) for k in sorted(sums)]))
        row: dict[str, Any] = {"epoch": epoch + 1, "step": step}
        row.update({k: float(v) for k, v in zip(sorted(sums), avg.tolist())})
        dist, spread = row.pop("tag_dist_sum", 0.0), row.pop("tag_spread_sum", 0.0)
        if spread > 0:  # means over steps and ranks: their ratio is the separation of all batches
            row["tag_separation"] = round(dist / spread, 4)
        row["lr"] = self.optimizer.param_groups[0]["lr"]
        if skipped:
            row["skipped_steps"] = skipped
        return step, row, 0

    def _agreed_stop(self) -> int:
        """The signal that asked the run to stop (:mod:`litepose.interrupt`; 0: none), the same on
        every rank: a signal may reach one rank only (``kill`` of rank 0), so the ranks take the
        largest of their flags before every step (one all-reduce of one number) and stop together."""
        return int(D.all_reduce_max(float(interrupt.stop_signal() or 0)))

    def _stopped(self, signum: int, epoch: int, step: int, best: float) -> None:
        """After a signal stopped the run at a step boundary (its state saved): rank 0 draws the curves
        and says what was kept; every rank raises :class:`~litepose.interrupt.Stopped` (exit code
        130 for SIGINT, 143 for SIGTERM, the summary in ``self.summary``)."""
        name = signal.Signals(signum).name
        done, total = getattr(self, "_stop_point", (0, 0))
        self.summary = {
            "output": str(self.out),
            "epochs": epoch,
            "steps": step,
            "best_ap": best if best >= 0 else None,
            "stopped_early": True,
            "stopped_by": name,
        }
        if self.main:
            if self.history:
                from ..viz.curves import plot_training_curves

                plot_training_curves(self.out / "metrics.jsonl", self.out / "curves.png")
            if self.tb is not None:
                self.tb.close()
            kept = [f"{self.out / 'last.pth'} (resumable: the same command goes on exactly from there)"]
            if self.history:
                kept.append(f"{self.out / 'metrics.jsonl'} ({len(self.history)} epochs)")
            if (self.out / "best.pth").is_file():
                kept.append(str(self.out / "best.pth"))
            self._log(
                f"{name}: stopped in epoch {epoch + 1}/{self.cfg.train.epochs} after {done} of its {total} steps "
                f"(step {step}); kept {', '.join(kept)}"
            )
        raise interrupt.Stopped(signum)

    def _end_epoch(
        self, epoch: int, step: int, row: dict[str, Any], best: float, clock: Callable[[], float]
    ) -> tuple[float, bool]:
        """After an epoch: rank 0's plan, validation (and best.pth), the metrics line, the log line and
        last.pth. Returns the best AP so far and whether the time limit stops the run."""
        epochs = self.cfg.train.epochs
        plan = self._plan(epoch, epoch + 1 == epochs, clock())
        row["minutes"] = round(plan["minutes"], 3)
        self._fit_horizon(step, plan["minutes"], epoch + 1)
        if plan["validate"]:
            metrics = self.validate()  # collective: every rank takes part
            if metrics:
                row["ap"] = metrics.get("AP", 0.0)
                row["ap50"] = metrics.get("AP50", 0.0)
                row["minutes"] = round(clock(), 3)  # rank 0's clock counts (only rank 0 writes metrics)
                if row["ap"] > best:
                    best = row["ap"]
                    if self.main:
                        self._save_best({"epoch": epoch + 1, "ap": best})
        self._write_metrics(row)
        msg = f"epoch {epoch + 1}/{epochs}  loss {row.get('loss', float('nan')):.5f}  lr {row['lr']:.2e}"
        if "ap" in row:
            msg += f"  AP {row['ap']:.3f} (best {best:.3f})"
            if self.val_info:
                msg += f" of subnet {self.val_info['val_arch']}"
        self._log(msg + f"  [{row['minutes']:.1f} min]")
        self._save_last(self.out / "last.pth", epoch + 1, step, best)
        return best, plan["stop"]

    def _finish(self, start_epoch: int, step: int, best: float, stopped_early: bool) -> dict[str, Any]:
        """The run's summary; rank 0 makes sure best.pth exists and draws the curves."""
        summary = {
            "output": str(self.out),
            "epochs": self.history[-1]["epoch"] if self.history else start_epoch,
            "steps": step,
            "best_ap": best if best >= 0 else None,
            "stopped_early": stopped_early,
        }
        if self.main:
            if not (self.out / "best.pth").exists():
                self._save_best({"epoch": summary["epochs"]})
            from ..viz.curves import plot_training_curves

            plot_training_curves(self.out / "metrics.jsonl", self.out / "curves.png")
            if self.tb is not None:
                self.tb.close()
        D.barrier()
        return summary

    @property
    def data_version(self) -> int | None:
        """The SynthPose version of the training data (``None``: not SynthPose)."""
        from ..data.synth import synthpose_version

        return synthpose_version(self.cfg.data.train)

    def _check_data_version(self, state_path: Path, recorded: int | None) -> None:
        """Refuse to resume a run on SynthPose of another version than it was trained on."""
        now = self.data_version
        if recorded != now and (recorded is not None or now is not None):
            raise ValueError(
                f"{state_path} was trained on SynthPose version {recorded}, but {self.cfg.data.train} holds "
                f"version {now}: start a new run (another --output, or --resume no)"
            )

    def _fit_horizon(self, step: int, minutes: float, epochs_done: int) -> None:
        """Time-limited cosine runs: end the decay where the budget is expected to end (rank 0's pace)."""
        t = self.cfg.train
        if not self.per_step_schedule or t.time_limit_min is None or minutes <= 0:
            return
        pace = step / minutes  # steps per minute so far, validation included
        per_epoch = step / max(1, epochs_done)
        horizon = min(t.epochs * per_epoch, step + max(0.0, t.time_limit_min - minutes) * pace)
        self.scheduler.set_horizon(round(horizon))  # step and rank 0's broadcast minutes: equal on every rank

    def _plan(self, epoch: int, last_epoch: bool, minutes: float) -> dict[str, Any]:
        """After an epoch: whether to validate and whether to stop (time limit), decided on rank 0.

        Only rank 0 knows the minutes of the run before a resume (its metrics history) and the
        ranks' clocks differ, so rank 0 decides and broadcasts: every rank then takes the same
        collectives (validation, RNG gathering, barriers) and stops after the same epoch.
        """
        plan = None
        if self.main:
            cfg = self.cfg
            limit = cfg.train.time_limit_min
            over_time = limit is not None and minutes >= limit
            every = cfg.val.every
            validate = bool(cfg.data.val) and (last_epoch or over_time or bool(every and (epoch + 1) % every == 0))
            plan = {"minutes": minutes, "validate": validate, "stop": over_time and not last_epoch}
        return D.broadcast_object(plan)

    def _save_best(self, extra: dict[str, Any]) -> None:
        """Write ``best.pth`` (rank 0): the exported model, with what was validated in ``extra``."""
        save_checkpoint(self._export_model(), self.out / "best.pth", extra={**extra, **self.val_info})

    def _save_last(self, path: Path, epoch: int, step: int, best: float, partial: dict[str, Any] | None = None) -> None:
        """Write the training state (collective: gathers every rank's RNG state; rank 0 writes).

        ``epoch`` is the number of completed epochs; ``partial`` (a run stopped mid-epoch) records
        how far into the next one it got (``batches``) with the loss sums so far, so that the
        resumed run skips those batches and ends exactly as an uninterrupted one.

        For fixed-subnet training the file resumes the supernet (``model``, optimizer, ...) and
        carries the standalone subnet as the model that ``litepose.load_checkpoint`` reads.
        """
        from .checkpoint import gather_rng_states

        rng = gather_rng_states()
        if self.main:
            save_training_state(
                path,
                self.model,
                self.optimizer,
                self.scheduler,
                epoch=epoch,
                step=step,
                scaler=self.scaler,
                rng=rng,
                extra={
                    "best_ap": best,
                    "synthpose_version": self.data_version,
                    "config": self.cfg.to_dict(),
                    **({"partial_epoch": partial} if partial else {}),
                },
                export=self._export_model() if self.fixed_arch is not None else None,
            )
        D.barrier()

    def _trim_metrics(self, start_epoch: int) -> None:
        """On resume, drop metric lines of epochs that will be re-run; load the rest as history."""
        path = self.out / "metrics.jsonl"
        if not path.is_file():
            return
        rows = []
        for line in path.read_text().splitlines():
            try:
                row = parse_json(line, str(path))
            except ValueError:  # a line cut short by a crash
                continue
            if not isinstance(row, dict):
                continue
            if int(row.get("epoch", math.inf)) <= start_epoch:
                rows.append(row)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        self.history = rows
