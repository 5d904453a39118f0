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

:class:`Trainer` orchestrates; each part is its own unit: :mod:`.rundata` (the data and the loader),
:mod:`.build` (model, optimiser, schedule, AMP scaler, loss, teacher), :mod:`.step` (one optimiser
step), :mod:`.validation`, :mod:`.checkpointing` (resume, ``last.pth``, ``best.pth``) and
:mod:`.runlog` (log lines, ``metrics.jsonl``, ``config.yaml``, tensorboard, curves).

Outputs in the run folder: ``last.pth`` (training state; also loadable by
``litepose.load_checkpoint``), ``best.pth`` (self-describing model with the best val AP),
``metrics.jsonl`` (one line per epoch), ``config.yaml``, ``curves.png``, and TensorBoard events
under ``tb/`` when tensorboard is installed. Both checkpoints record the keypoints, input size
and input normalisation the model was trained with. Fixed-subnet training (``supernet.arch`` with
the supernet) writes the standalone subnet as that model; supernet training validates one subnet
(``val.arch``) after recalibrating its BatchNorm.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from .. import interrupt
from ..models.spec import check_input_size, is_supernet, resolve_spec, spec_name
from . import build as B
from . import distributed as D
from . import rundata
from .build import load_backbone
from .checkpoint import restore_rng_state
from .checkpointing import RunCheckpoints
from .config import TrainConfig
from .cputune import cpu_training_settings, kernel_status
from .runlog import RunLog, own_folder
from .schedule import fit_horizon
from .step import TrainStep, epoch_metrics
from .validation import Validator, exported_model, plan_epoch_end

__all__ = ["Trainer", "load_backbone"]


class Trainer:
    """Train a LitePose (or its supernet) from a :class:`TrainConfig` into ``output``.

    ``resume``: ``"auto"`` (continue from ``output/last.pth`` if present), ``None`` (start
    fresh; refuses to overwrite an existing run) or a path to a training state.
    """

    def __init__(self, cfg: TrainConfig, output: str | Path, resume: str | Path | None = "auto") -> None:
        self.cfg = cfg
        self.out = Path(output)
        self.dist = D.setup(cfg.train.device, cfg.train.dist_timeout_min)
        self.main = self.dist.is_main
        self.device = self.dist.device
        self.log = RunLog(self.out, self.main)
        self.history = self.log.history  # the metrics rows so far (kept from before a resume too)
        self.checkpoints = RunCheckpoints(cfg, self.out, resume, self.dist, self.log)
        #: The input statistics training feeds the network with, recorded in its checkpoints.
        self.normalization = rundata.TRAINING_NORMALIZATION
        self._partial: dict[str, Any] | None = None  # resumed mid-epoch: where (see _train_epoch)
        self.summary: dict[str, Any] | None = None  # set when a signal stopped the run (fit raised)

    # -- building -------------------------------------------------------------------------------

    def build(self, resuming: bool = False) -> None:
        """The data, model, optimizer, schedule and loss of the run; ``resuming``: a training state
        will be restored (existing SynthPose data is then never regenerated)."""
        cfg = self.cfg
        self.is_super = is_supernet(cfg.model.arch)
        base_size = max(cfg.supernet.sizes) if self.is_super else resolve_spec(cfg.model.arch)[1].input_size
        self.input_size = check_input_size(cfg.model.input_size or base_size, "config: model.input_size")
        rundata.ensure_synthpose(cfg, self.main, resuming, self.log)
        self.dataset = rundata.training_dataset(cfg, self.input_size, self.main)
        k = self.dataset.num_joints
        rundata.seed_all(cfg.train.seed)  # the same initial weights on every rank and every run
        model = B.build_model(cfg, self.dataset, self.input_size, self.normalization, self.is_super, self.log)
        self.fixed_arch = model.set_arch(cfg.supernet.arch) if self.is_super and cfg.supernet.arch else None
        self.validator = Validator(
            cfg, self.dist, self.dataset, self.input_size, model if self.is_super else None, self.fixed_arch
        )
        self.model = B.wrap_ddp(cfg, model, self.dist, self.is_super)
        self.optimizer = B.build_optimizer(cfg, self.model, self.device)
        self.per_step_schedule = cfg.train.schedule == "cosine"
        self.steps_per_epoch = B.steps_per_epoch(cfg, len(self.dataset), self.dist.world_size)
        self.scheduler = B.build_scheduler(cfg, self.optimizer, self.steps_per_epoch)
        self.stepper = TrainStep(
            cfg, self.dist, k, self.normalization, model=self.model, optimizer=self.optimizer,
            scheduler=self.scheduler, per_step_schedule=self.per_step_schedule,
            scaler=B.amp_scaler(cfg, self.device), loss=B.build_loss(cfg, k),
            teacher=B.load_teacher(cfg, k, self.device), fixed_arch=self.fixed_arch, is_super=self.is_super,
        )  # fmt: skip

    def cache_images(self) -> None:
        """Decode the training images into memory, up to ``data.cache_mb`` (:func:`.rundata.cache_images`)."""
        rundata.cache_images(self.dataset, self.cfg, self.main, self.log)

    def num_workers(self) -> int:
        """The loader's worker processes (:func:`~litepose.engine.rundata.auto_workers`)."""
        return rundata.auto_workers(self.cfg, self.device)

    def loader(self) -> DataLoader:
        """The one DataLoader of the run (:func:`~litepose.engine.rundata.make_loader`)."""
        sizes = None
        if self.is_super:
            sizes = [self.fixed_arch.input_size] if self.fixed_arch is not None else list(self.cfg.supernet.sizes)
        return rundata.make_loader(self.cfg, self.dataset, self.dist, sizes, self.num_workers())

    def validate(self) -> dict[str, float] | None:
        """AP on the val set with the current weights (``None`` without val data); collective under torchrun."""
        return self.validator(self.model)

    # -- the run --------------------------------------------------------------------------------

    def fit(self) -> dict[str, Any]:
        """Train to the configured number of epochs (or time limit); returns a summary.

        On CPU, training runs under :func:`~litepose.engine.cputune.cpu_training_settings`
        (denormals flushed to zero, freed memory kept by the allocator). Under DDP a collective that
        waits past ``train.dist_timeout_min``, or a rank that dies, is one clear error naming this
        rank and the timeout (:func:`~litepose.engine.distributed.peer_errors`), not a traceback."""
        with D.peer_errors(), cpu_training_settings(self.device.type == "cpu"), own_folder(self.out, self.dist):
            return self._fit()

    def _fit(self) -> dict[str, Any]:
        cfg = self.cfg
        cfg.check(runnable=True)  # a config built in Python too (TrainConfig.load checks what it reads)
        state_path, state = self.checkpoints.read()  # before anything is built, generated or written
        self.build(resuming=state is not None)
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
        self.cache_images()
        stopped_early = False
        signum = 0
        loader = self.loader()
        with interrupt.graceful():  # a first SIGINT / SIGTERM stops at the next step boundary
            for epoch in range(start_epoch, cfg.train.epochs):
                step, row, signum = self._train_epoch(loader, epoch, step, best, clock)
                if signum:
                    break
                best, stop = self._end_epoch(epoch, step, row, best, clock)
                if stop:
                    self.log(f"time limit of {cfg.train.time_limit_min} min reached after epoch {epoch + 1}")
                    stopped_early = True
                    break
        del loader  # ends persistent workers now rather than at garbage collection
        if signum:
            self._stopped(signum, epoch, step, best)  # raises interrupt.Stopped
        return self._finish(start_epoch, step, best, stopped_early)

    def _restore(self, path: Path | None, state: dict[str, Any] | None) -> tuple[int, int, float]:
        """Load ``state`` into the built run; returns (epoch, step, best AP), (0, 0, -1) when fresh."""
        r = self.checkpoints.restore(path, state, self.model, self.optimizer, self.scheduler, self.stepper.scaler)
        self._partial = r.partial
        old = self.checkpoints.old_epochs
        if state is not None and self.per_step_schedule and old is not None:
            # the cosine decay ends where train.epochs now says (never before the current step)
            self.scheduler.set_horizon(self.cfg.train.epochs * self.steps_per_epoch)
            self.log(
                f"train.epochs {old} -> {self.cfg.train.epochs}: the cosine schedule now ends at step "
                f"{self.scheduler.horizon} (learning rate {self.optimizer.param_groups[0]['lr']:.2e} now)"
            )
        return r.epoch, r.step, r.best

    def _open_run(self, start_epoch: int) -> None:
        """Rank 0: the output folder, its config.yaml, the metrics history and tensorboard."""
        self.log.open(self.cfg.to_dict(), start_epoch)

    def _announce(self, start_epoch: int) -> None:
        what = self.cfg.model.arch
        if self.is_super:
            what = f"subnet {spec_name(self.fixed_arch)} of the supernet" if self.fixed_arch else "supernet"
        group = f" (process group {D.backend()})" if self.dist.group else ""
        self.log(
            f"training {what} on {len(self.dataset)} images "
            f"({self.dataset.num_joints} joints), input {self.input_size}, {self.dist.world_size} process(es)"
            f"{group} on {self.device}, epochs {start_epoch}->{self.cfg.train.epochs}"
        )

        self.log(kernel_status(self.device.type, supernet=self.is_super))

    def _start_epoch(self, loader: Any, epoch: int) -> dict[str, Any] | None:
        """Seed the epoch (or restore the generators of a run stopped in it) and set the loader's
        epoch; returns the stopped run's point in this epoch (None: from its start)."""
        part = self._partial if self._partial is not None and self._partial["epoch"] == epoch else None
        self._partial = None
        if part is not None:  # the generators as they were when the stopped run saved its state
            restore_rng_state(part["rng"])
        else:
            rundata.seed_all(rundata.epoch_seed(self.cfg.train.seed, epoch, self.dist.rank))
        loader.batch_sampler.set_epoch(epoch)
        loader.batch_sampler.skip = int(part["batches"]) if part is not None else 0  # batches already trained on
        self.stepper.train_mode()
        return part

    def _train_epoch(
        self, loader: Any, epoch: int, step: int, best: float, clock: Callable[[], float]
    ) -> tuple[int, dict[str, Any] | None, int]:
        """One epoch of training steps; returns the step count, the epoch's metrics row and 0, or,
        when a signal asked to stop (:meth:`_agreed_stop`, checked before every step), ``(step,
        None, signal)`` after saving the state mid-epoch in ``last.pth``."""
        part = self._start_epoch(loader, epoch)
        skip = loader.batch_sampler.skip
        sums: dict[str, float] = dict(part["sums"]) if part is not None else {}
        n = int(part["n"]) if part is not None else 0
        skipped = int(part.get("skipped", 0)) if part is not None else 0
        limit = self.cfg.train.max_steps_per_epoch
        total_steps = min(len(loader), limit) if limit else len(loader)
        bar = None
        if self.main:
            from tqdm import tqdm

            desc = f"epoch {epoch + 1}/{self.cfg.train.epochs}"
            bar = tqdm(total=total_steps, initial=skip, desc=desc, leave=False, file=sys.stderr)
        signum = 0
        for i, batch in enumerate(loader, start=skip):
            if limit and i >= limit:
                break
            signum = self._agreed_stop()
            if signum:
                partial = {"batches": i, "sums": dict(sums), "n": n, "skipped": skipped, "minutes": round(clock(), 3)}
                self._save_last(epoch, step, best, partial=partial)
                self._stop_point = (i, total_steps)
                break
            stats = self.stepper(batch, step)
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
        lr = self.optimizer.param_groups[0]["lr"]
        return step, epoch_metrics(epoch, step, sums, n, skipped, lr), 0

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
            self.log.close(curves=bool(self.history))
            where = f"epoch {epoch + 1}/{self.cfg.train.epochs} after {done} of its {total} steps (step {step})"
            self.log.stopped(name, where)
        raise interrupt.Stopped(signum)

    def _end_epoch(
        self, epoch: int, step: int, row: dict[str, Any], best: float, clock: Callable[[], float]
    ) -> tuple[float, bool]:
        """After an epoch: rank 0's plan, validation (and best.pth), the metrics line, the log line and
        last.pth. Returns the best AP so far and whether the time limit stops the run."""
        epochs = self.cfg.train.epochs
        plan = plan_epoch_end(self.cfg, self.main, epoch, clock())
        row["minutes"] = round(plan["minutes"], 3)
        if self.per_step_schedule:  # time-limited cosine runs: the decay ends where the budget should
            fit_horizon(self.scheduler, self.cfg.train, step, plan["minutes"], epoch + 1)
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
        self.log.write(row)
        msg = f"epoch {epoch + 1}/{epochs}  loss {row.get('loss', float('nan')):.5f}  lr {row['lr']:.2e}"
        if "ap" in row:
            msg += f"  AP {row['ap']:.3f} (best {best:.3f})"
            if self.validator.info:
                msg += f" of subnet {self.validator.info['val_arch']}"
        self.log(msg + f"  [{row['minutes']:.1f} min]")
        self._save_last(epoch + 1, step, best)
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
            self.log.close()
        D.barrier()
        return summary

    def _save_best(self, extra: dict[str, Any]) -> None:
        """Write ``best.pth`` (rank 0): the exported model, with what was validated."""
        self.checkpoints.save_best(exported_model(self.model, self.fixed_arch), {**extra, **self.validator.info})

    def _save_last(self, epoch: int, step: int, best: float, partial: dict[str, Any] | None = None) -> None:
        """Write ``last.pth`` (collective); fixed-subnet training carries the standalone subnet as its model."""
        export = exported_model(self.model, self.fixed_arch) if self.fixed_arch is not None else None
        self.checkpoints.save_last(
            self.model, self.optimizer, self.scheduler, self.stepper.scaler, epoch=epoch, step=step, best=best,
            partial=partial, export=export,
        )  # fmt: skip
