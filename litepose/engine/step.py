"""One optimiser step of training: the subnets trained at it (supernet), the forward passes under
AMP, the loss with distillation, the agreement of the ranks on a non-finite loss, clipping, the
update and the per-step schedule."""

from __future__ import annotations

import random
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

from ..models.space import SearchSpace
from ..normalization import Normalization, network_input
from . import distributed as D
from .checkpoint import unwrap_model
from .config import TrainConfig
from .loss import heatmap_distillation_loss, tag_separation
from .rundata import epoch_seed

__all__ = ["TrainStep", "MAX_NONFINITE_STEPS", "epoch_metrics"]

#: Under AMP, how many steps in a row may have a non-finite loss (each skipped, as GradScaler skips
#: an overflowing step) before the run stops as diverged (docs/training.md).
MAX_NONFINITE_STEPS = 10


class TrainStep:
    """``step(batch, n)`` trains on one batch; returns the loss terms, or None for a step skipped under
    AMP because its loss was not finite. The attributes (``model``, ``optimizer``, ``scheduler``,
    ``scaler``, ``loss``, ``teacher``) are what the step uses, replaceable (tests)."""

    def __init__(self, cfg: TrainConfig, dist: Any, num_joints: int, normalization: Normalization, **parts: Any):
        self.cfg = cfg
        self.dist = dist
        self.num_joints = num_joints
        self.normalization = normalization
        self.model: nn.Module = parts["model"]
        self.optimizer: torch.optim.Optimizer = parts["optimizer"]
        self.scheduler: Any = parts["scheduler"]
        self.per_step_schedule: bool = parts["per_step_schedule"]
        self.scaler: Any = parts["scaler"]
        self.amp = self.scaler is not None  # autocast (CUDA): fixed when built, whatever scaler a test puts in
        self.loss: Any = parts["loss"]
        self.teacher: nn.Module | None = parts["teacher"]
        self.fixed_arch = parts["fixed_arch"]
        self.is_super: bool = parts["is_super"]
        self.nonfinite_steps = 0  # AMP: steps in a row skipped for a non-finite loss

    def subnets(self, step: int) -> list[Any]:
        """The subnets trained at this step (None = the plain network)."""
        if not self.is_super:
            return [None]
        if self.fixed_arch is not None:
            return [self.fixed_arch]
        sc = self.cfg.supernet
        rng = random.Random(epoch_seed(self.cfg.train.seed, step))
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

    def _teacher_heatmaps(self, images: torch.Tensor) -> list[torch.Tensor] | None:
        if self.teacher is None:
            return None
        size = self.cfg.loss.teacher_input_size
        with torch.no_grad():
            x_t = images
            if size and size != images.shape[-1]:
                x_t = nn.functional.interpolate(images, size=(size,) * 2, mode="bilinear")
            return [o[:, : self.num_joints] for o in self.teacher(x_t)]

    def __call__(self, batch: dict[str, Any], step: int) -> dict[str, float] | None:
        """One optimizer step (a non-finite loss: :meth:`_finite_everywhere`; raised after
        :data:`MAX_NONFINITE_STEPS` skipped steps in a row)."""
        dev, k = self.dist.device, self.num_joints
        images = network_input(batch["image"].to(dev, non_blocking=True), self.normalization)
        heatmaps = [h.to(dev, non_blocking=True) for h in batch["heatmaps"]]
        masks = [m.to(dev, non_blocking=True) for m in batch["masks"]]
        joints = batch["joints"][0].to(dev, non_blocking=True)
        t_heat = self._teacher_heatmaps(images)
        self.optimizer.zero_grad(set_to_none=True)
        archs = self.subnets(step)
        stats: dict[str, float] = {}
        nonfinite = False
        inplace = self.cfg.supernet.inplace_distill if self.is_super and len(archs) > 1 else 0.0
        for i, arch in enumerate(archs):
            with torch.autocast("cuda", dtype=torch.float16) if self.amp else nullcontext():
                outputs = self.model(images) if arch is None else self.model(images, arch)
                res = self.loss(outputs, heatmaps, masks, joints)
                total = res["total"]
                if t_heat is not None:
                    dl = sum(
                        heatmap_distillation_loss(o[:, :k].float(), t, m).mean()
                        for o, t, m in zip(outputs, t_heat, masks)
                    )
                    total = total + self.cfg.loss.distill_factor * dl
                    stats["distill"] = stats.get("distill", 0.0) + float(dl.detach())
                if inplace and i == 0:  # the largest subnet (sandwich order) teaches the others
                    t_heat_inplace = [o[:, :k].detach().float() for o in outputs]
                elif inplace:
                    il = sum(
                        heatmap_distillation_loss(o[:, :k].float(), t, m).mean()
                        for o, t, m in zip(outputs, t_heat_inplace, masks)
                    )
                    total = total + inplace * il
                    stats["inplace_distill"] = stats.get("inplace_distill", 0.0) + float(il.detach())
            if not self._finite_everywhere(total, step):  # raises, except under AMP
                nonfinite = True
            if self.scaler is not None:
                self.scaler.scale(total).backward()  # non-finite: GradScaler skips the update below
            else:
                total.backward()
            if not nonfinite:
                self._add_stats(stats, total, res, outputs, joints)
        self._update()
        if nonfinite:  # AMP: a skipped step; a run of them is a diverged run, not an overflow
            self.nonfinite_steps += 1
            if self.nonfinite_steps >= MAX_NONFINITE_STEPS:
                raise FloatingPointError(
                    f"{self._rank_prefix()}the loss was not finite at {self.nonfinite_steps} steps in a row (up to "
                    f"step {step}; each was skipped, as mixed precision skips a step that overflows): lower "
                    "train.lr, or set train.grad_clip"
                )
            return None
        self.nonfinite_steps = 0
        return {name: v / len(archs) for name, v in stats.items()}

    def _add_stats(self, stats: dict[str, float], total: Any, res: dict[str, Any], outputs: Any, joints: Any) -> None:
        for name, v in (
            ("loss", total),
            ("heatmap_4", res["heatmap"][0]),
            ("heatmap_2", res["heatmap"][1]),
            ("push", res["push"]),
            ("pull", res["pull"]),
        ):
            stats[name] = stats.get(name, 0.0) + float(v.detach())
        dist, spread, _ = tag_separation(outputs[0][:, self.num_joints :], joints)
        stats["tag_dist_sum"] = stats.get("tag_dist_sum", 0.0) + dist
        stats["tag_spread_sum"] = stats.get("tag_spread_sum", 0.0) + spread

    def _update(self) -> None:
        """Clip (``train.grad_clip``), step the optimiser (through the scaler under AMP) and the per-step schedule."""
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

    def train_mode(self) -> None:
        """The model in training mode (its BatchNorm kept in eval with ``train.freeze_bn``)."""
        self.model.train()
        if self.cfg.train.freeze_bn:
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()


def epoch_metrics(epoch: int, step: int, sums: dict[str, float], n: int, skipped: int, lr: float) -> dict[str, Any]:
    """An epoch's metrics row: the loss terms (``sums`` over ``n`` steps) averaged over steps and ranks
    (collective), the tag separation, the learning rate and the steps ``skipped`` (AMP)."""
    avg = D.all_reduce_mean(torch.tensor([sums.get(k, 0.0) / max(n, 1) for k in sorted(sums)]))
    row: dict[str, Any] = {"epoch": epoch + 1, "step": step}
    row.update({k: float(v) for k, v in zip(sorted(sums), avg.tolist())})
    dist, spread = row.pop("tag_dist_sum", 0.0), row.pop("tag_spread_sum", 0.0)
    if spread > 0:  # means over steps and ranks: their ratio is the separation of all batches
        row["tag_separation"] = round(dist / spread, 4)
    row["lr"] = lr
    if skipped:
        row["skipped_steps"] = skipped
    return row
