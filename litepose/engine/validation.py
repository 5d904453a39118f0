"""Validation during training: the val set loaded and checked before the first step, the network
measured (supernet training: one subnet with its BatchNorm recalibrated), AP shared by the ranks,
and the model a run's checkpoints give (:func:`exported_model`)."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..models.space import SearchSpace
from ..models.spec import ArchSpec, resolve_spec, spec_name
from ..models.supernet import extract_subnet
from . import distributed as D
from .checkpoint import unwrap_model
from .config import TrainConfig

__all__ = ["Validator", "exported_model", "plan_epoch_end"]


def exported_model(model: nn.Module, fixed_arch: ArchSpec | None) -> nn.Module:
    """The model of ``best.pth`` (and the one ``load_checkpoint(last.pth)`` gives).

    The trained network itself, except for fixed-subnet training: the standalone subnet
    (exactly the supernet's function for that arch; its BatchNorm statistics are its own,
    since only that subnet ever ran), so that ``litepose predict --weights best.pth`` runs it.
    It keeps the trained network's keypoints and normalisation.
    """
    bare = unwrap_model(model)
    if fixed_arch is None:
        return bare
    net = extract_subnet(bare, fixed_arch)
    net.input_size = fixed_arch.input_size
    net.normalization = bare.normalization
    return net


class Validator:
    """AP on ``data.val`` for one run: ``info`` says what was measured (for the checkpoints).

    ``fixed_arch``: the subnet of fixed-subnet training; ``supernet``: the bare supernet of
    supernet training (None otherwise), whose validated subnet (:attr:`spec`) is checked here.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        dist: Any,
        dataset: Any,
        input_size: int,
        supernet: nn.Module | None = None,
        fixed_arch: ArchSpec | None = None,
    ) -> None:
        self.cfg = cfg
        self.dist = dist
        self.dataset = dataset
        self.input_size = input_size
        self.fixed_arch = fixed_arch
        self.is_super = supernet is not None
        self.spec = self._spec(supernet) if supernet is not None else None
        self.info: dict[str, Any] = {}
        self.annotations: Any = self._load(dataset.num_joints)  # the val set scored (None: no val data)

    def _load(self, num_joints: int) -> Any:
        """``data.val`` with its image files and joint count checked (None without val data), so that
        a bad val set stops the run before the first step instead of after the first validated epoch."""
        d = self.cfg.data
        if not d.val:
            return None
        from ..eval.evaluate import load_eval_data

        ann = load_eval_data(d.val, d.val_images)
        if ann.num_joints != num_joints:
            raise ValueError(f"config: data.val {d.val} has {ann.num_joints} joints, data.train has {num_joints}")
        ann.check_images(what="val images")
        n = self.cfg.val.max_images
        return ann if n is None or n >= len(ann.image_ids) else ann.subset(ann.image_ids[:n])

    def _spec(self, supernet: nn.Module) -> ArchSpec:
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

    def network(self, model: nn.Module) -> nn.Module:
        """The network validation measures; sets :attr:`info` (what was validated, for checkpoints).

        Supernet training (no fixed subnet): the ``val.arch`` subnet with BatchNorm recalibrated on
        ``val.calib_batches`` training batches, because the supernet's running statistics mix
        every sampled subnet and belong to none of them. The same batches at every validation
        (seeded by ``train.seed``), so APs of different epochs compare.
        """
        from .transfer import calibration_batches, recalibrated_subnet

        if not self.is_super:
            return unwrap_model(model)
        spec = self.spec
        info: dict[str, Any] = {"val_arch": spec_name(spec), "val_spec": spec.to_json()}
        if self.fixed_arch is not None:
            net = exported_model(model, self.fixed_arch)
        else:
            bs, n = self.cfg.train.batch_size, max(0, int(self.cfg.val.calib_batches))
            batches = calibration_batches(self.dataset, None, spec.input_size, n * bs, bs, self.cfg.train.seed)
            net, seen = recalibrated_subnet(unwrap_model(model), spec, batches if n else None, self.dist.device)
            net.normalization = unwrap_model(model).normalization
            info["bn_recalibration_images"] = seen
        self.info = info
        return net

    def __call__(self, model: nn.Module) -> dict[str, float] | None:
        """AP on the val set with the current weights (``None`` without val data).

        Collective under torchrun: every rank predicts its share of the val images, rank 0
        scores the gathered results, every rank gets the metrics.
        """
        if self.annotations is None:
            return None
        from ..eval import evaluate
        from ..eval.evaluate import run_predictor
        from ..predictor import Predictor

        cfg, ann = self.cfg, self.annotations
        net = self.network(model)
        was_training = net.training
        net.eval()
        try:
            pred = Predictor(
                net,
                input_size=self.input_size if not self.is_super else net.input_size,
                flip_test=cfg.val.flip_test,
                detection_threshold=cfg.val.detection_threshold,
                device=str(self.dist.device),
            )
            share = ann.image_ids[self.dist.rank :: self.dist.world_size]
            mine = run_predictor(pred, ann, progress=False, image_ids=share)
        finally:
            net.train(was_training)
        results = [r for part in D.gather_objects(mine) for r in part]
        metrics = None
        if self.dist.is_main:
            scored = evaluate(results, ann, progress=False)
            metrics = {k: float(v) for k, v in scored.items() if isinstance(v, (int, float))}
        return D.broadcast_object(metrics)


def plan_epoch_end(cfg: TrainConfig, main: bool, epoch: int, minutes: float) -> dict[str, Any]:
    """After an epoch: whether to validate and whether to stop (time limit), decided on rank 0.

    Only rank 0 knows the minutes of the run before a resume (its metrics history) and the
    ranks' clocks differ, so rank 0 decides and broadcasts: every rank then takes the same
    collectives (validation, RNG gathering, barriers) and stops after the same epoch.
    """
    plan = None
    if main:
        last_epoch = epoch + 1 == cfg.train.epochs
        limit = cfg.train.time_limit_min
        over_time = limit is not None and minutes >= limit
        every = cfg.val.every
        validate = bool(cfg.data.val) and (last_epoch or over_time or bool(every and (epoch + 1) % every == 0))
        plan = {"minutes": minutes, "validate": validate, "stop": over_time and not last_epoch}
    return D.broadcast_object(plan)
