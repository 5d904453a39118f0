"""What a run trains with, built from its config: the model (fine-tuning init, SyncBatchNorm, DDP),
the optimiser, the learning-rate schedule, the AMP scaler, the loss and the distillation teacher.

Each is one function of the config and the run's device; the config's values were checked before
(:meth:`~litepose.engine.config.TrainConfig.check`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..models import SuperLitePose, create_model, load_checkpoint
from ..models.checkpoint import CheckpointError, read_state_dict
from ..normalization import Normalization
from .config import TrainConfig
from .loss import LitePoseLoss
from .schedule import CosineSchedule

__all__ = [
    "HEAD_PREFIXES",
    "load_backbone",
    "build_model",
    "wrap_ddp",
    "build_optimizer",
    "build_scheduler",
    "amp_scaler",
    "build_loss",
    "load_teacher",
]

HEAD_PREFIXES = ("deconv", "final")


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


def build_model(
    cfg: TrainConfig,
    dataset: Any,
    input_size: int,
    normalization: Normalization,
    is_super: bool,
    log: Callable[[str], None],
) -> nn.Module:
    """The network to train (on the CPU, not wrapped): the supernet or ``model.arch`` for the data's
    keypoints, described with the input size and the ``normalization`` training feeds it (so that
    its checkpoints record them), with ``model.head_init_std`` and ``model.pretrained`` applied.
    Call it after seeding: the initial weights come from the global generator."""
    k = dataset.num_joints
    model = SuperLitePose(k) if is_super else create_model(cfg.model.arch, num_joints=k)
    model.keypoints = dataset.keypoints
    model.normalization = normalization
    if not is_super:
        model.input_size = input_size
    m = cfg.model
    if m.head_init_std is not None:
        from ..models.litepose import init_output_layers

        init_output_layers(model, m.head_init_std)
    if m.pretrained:
        n = load_backbone(model, m.pretrained, head=m.pretrained_head)
        what = "backbone and head" if m.pretrained_head else "backbone"
        fresh = "" if m.pretrained_head else " (head initialised fresh)"
        log(f"fine-tuning: {n} {what} tensors from {m.pretrained}{fresh}")
    return model


def wrap_ddp(cfg: TrainConfig, model: nn.Module, dist: Any, is_super: bool) -> nn.Module:
    """The model moved to the run's device (channels_last), under DDP with SyncBatchNorm when asked;
    ``model`` itself when not distributed."""
    device = dist.device
    # channels_last: about 2x faster training of the depthwise-heavy network on CPU (and fine on GPU).
    model.to(device, memory_format=torch.channels_last)
    if not dist.enabled:
        return model
    if cfg.model.sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=is_super)


def build_optimizer(cfg: TrainConfig, model: nn.Module, device: torch.device) -> torch.optim.Optimizer:
    """``train.optimizer`` over the model's parameters (fused where the device has the kernel)."""
    t = cfg.train
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[t.optimizer]
    # fused: one kernel for the whole update instead of a dozen ops per tensor (CPU and CUDA)
    fused = device.type in ("cpu", "cuda")
    return kind(model.parameters(), lr=t.lr, weight_decay=t.weight_decay, fused=fused or None)


def build_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int) -> Any:
    """``train.schedule``: cosine (stepped every step over ``epochs * steps_per_epoch``) or the
    original's steps (stepped every epoch)."""
    t = cfg.train
    if t.schedule == "cosine":
        return CosineSchedule(optimizer, t.epochs * steps_per_epoch, t.warmup_steps, t.min_lr_factor)
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(t.lr_steps), gamma=t.lr_factor)


def steps_per_epoch(cfg: TrainConfig, images: int, world_size: int) -> int:
    """The optimiser steps of one epoch: the batches of this rank's share, capped by ``train.max_steps_per_epoch``."""
    t = cfg.train
    per_epoch = max(1, images // (t.batch_size * world_size))
    return min(per_epoch, t.max_steps_per_epoch) if t.max_steps_per_epoch else per_epoch


def amp_scaler(cfg: TrainConfig, device: torch.device) -> Any:
    """The GradScaler of mixed precision (``train.amp``, CUDA only); None without AMP."""
    return torch.amp.GradScaler("cuda") if cfg.train.amp and device.type == "cuda" else None


def build_loss(cfg: TrainConfig, num_joints: int) -> LitePoseLoss:
    """The heatmap + associative-embedding loss of the ``loss`` section."""
    lc = cfg.loss
    return LitePoseLoss(
        num_joints, lc.heatmap_factors, lc.push_factor, lc.pull_factor, lc.push_type, fg_weight=lc.heatmap_fg_weight
    )


def load_teacher(cfg: TrainConfig, num_joints: int, device: torch.device) -> nn.Module | None:
    """The distillation teacher of ``loss.teacher`` (eval mode, on ``device``); None without one."""
    path = cfg.loss.teacher
    if not path:
        return None
    teacher, info = load_checkpoint(path)
    if info["num_joints"] != num_joints:
        raise ValueError(f"teacher {path} has {info['num_joints']} joints, the data has {num_joints}")
    return teacher.to(device).eval()
