"""A run's checkpoints: which training state a run continues (``resume``), the refusal to resume
with other settings or other SynthPose data, the state restored (mid-epoch too), and ``last.pth``
(training state, written after every epoch and when a signal stops the run) and ``best.pth`` (the
self-describing model with the best val AP). The file format is :mod:`litepose.engine.checkpoint`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from ..models import save_checkpoint
from . import distributed as D
from .checkpoint import gather_rng_states, load_training_state, restore_training_state, save_training_state
from .config import TrainConfig, resume_differences

__all__ = ["RunCheckpoints", "Restored"]


@dataclass
class Restored:
    """Where a run continues: completed ``epoch``s, ``step``s, the ``best`` val AP (-1: none) and
    ``partial`` (a run a signal stopped mid-epoch: how far it got, with this rank's generator states)."""

    epoch: int = 0
    step: int = 0
    best: float = -1.0
    partial: dict[str, Any] | None = None


class RunCheckpoints:
    """The checkpoints of the run in ``out``. ``resume``: ``"auto"`` (``out/last.pth`` if present),
    ``None`` (a fresh run; refuses to overwrite one) or a path to a training state."""

    def __init__(
        self, cfg: TrainConfig, out: Path, resume: str | Path | None, dist: Any, log: Callable[[str], None]
    ) -> None:
        self.cfg = cfg
        self.out = out
        self.resume = resume
        self.dist = dist
        self.log = log
        self.old_epochs: int | None = None  # train.epochs of the run being resumed, when it changed

    # -- resuming -------------------------------------------------------------------------------

    def state_path(self) -> Path | None:
        """The training state to continue, None for a fresh run."""
        last = self.out / "last.pth"
        if self.resume == "auto":
            return last if last.is_file() else None
        if self.resume is not None:
            return Path(self.resume)
        if last.is_file():
            raise ValueError(f"{self.out} already holds a run (last.pth): resume it, or choose another --output")
        return None

    def read(self) -> tuple[Path | None, dict[str, Any] | None]:
        """The training state to resume and its path (``(None, None)``: a fresh run), read before
        anything is built or written, with the config it was trained with compared to this one."""
        path = self.state_path()
        if path is None:
            return None, None
        state = load_training_state(path)
        self._check_config(path, state)
        return path, state

    def _check_config(self, path: Path, state: dict[str, Any]) -> None:
        """Refuse to resume with settings other than the run's own, except
        :data:`~litepose.engine.config.RESUME_CHANGEABLE` (its length, time limit, validation, loading
        and device), which are applied and logged.

        The recorded config is the one in ``last.pth`` (``extra["config"]``), else the
        ``config.yaml`` beside it (files of earlier litepose versions)."""
        recorded = (state.get("extra") or {}).get("config")
        if recorded is None and (path.parent / "config.yaml").is_file():
            try:
                recorded = yaml.safe_load((path.parent / "config.yaml").read_text())
            except (OSError, yaml.YAMLError):
                recorded = None
        self.old_epochs = None
        if not isinstance(recorded, dict):
            self.log(f"notice: {path} records no config: the settings of the run it continues are not compared")
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
            self.log(f"resuming with changed {', '.join(allowed)}")
        old_epochs = (recorded.get("train") or {}).get("epochs")
        if old_epochs is not None and old_epochs != self.cfg.train.epochs:
            self.old_epochs = old_epochs

    def restore(
        self, path: Path | None, state: dict[str, Any] | None, model: nn.Module, optimizer: Any, scheduler: Any,
        scaler: Any,
    ) -> Restored:  # fmt: skip
        """Load ``state`` into the built run (epoch 0, step 0, best -1 when fresh)."""
        if path is None or state is None:
            return Restored()
        r = restore_training_state(state, model, optimizer, scheduler, scaler, rank=self.dist.rank, where=str(path))
        self._check_data_version(path, r["extra"].get("synthpose_version"))
        partial = r["extra"].get("partial_epoch")
        mid = None
        if partial:  # stopped by a signal mid-epoch: that epoch goes on from the batch it stopped at
            rng = state["rng"]
            mine = rng[self.dist.rank % len(rng)] if isinstance(rng, list) else rng
            mid = {**partial, "epoch": r["epoch"], "rng": mine}
            done = partial["batches"]
            self.log(f"resumed from {path}: epoch {r['epoch'] + 1} after {done} of its batches, step {r['step']}")
        else:
            self.log(f"resumed from {path}: epoch {r['epoch']}, step {r['step']}")
        return Restored(epoch=r["epoch"], step=r["step"], best=float(r["extra"].get("best_ap", -1.0)), partial=mid)

    def data_version(self) -> int | None:
        """The SynthPose version of the training data (``None``: not SynthPose)."""
        from ..data.synth import synthpose_version

        return synthpose_version(self.cfg.data.train)

    def _check_data_version(self, state_path: Path, recorded: int | None) -> None:
        """Refuse to resume a run on SynthPose of another version than it was trained on."""
        now = self.data_version()
        if recorded != now and (recorded is not None or now is not None):
            raise ValueError(
                f"{state_path} was trained on SynthPose version {recorded}, but {self.cfg.data.train} holds "
                f"version {now}: start a new run (another --output, or --resume no)"
            )

    # -- writing --------------------------------------------------------------------------------

    def save_best(self, model: nn.Module, extra: dict[str, Any]) -> None:
        """Write ``best.pth`` (rank 0): the exported ``model``, with what was validated in ``extra``."""
        save_checkpoint(model, self.out / "best.pth", extra=extra)

    def save_last(
        self, model: nn.Module, optimizer: Any, scheduler: Any, scaler: Any, *, epoch: int, step: int, best: float,
        partial: dict[str, Any] | None = None, export: nn.Module | None = None,
    ) -> None:  # fmt: skip
        """Write ``last.pth``, the training state (collective: gathers every rank's RNG state; rank 0 writes).

        ``epoch`` is the number of completed epochs; ``partial`` (a run stopped mid-epoch) records
        how far into the next one it got (``batches``) with the loss sums so far, so that the
        resumed run skips those batches and ends exactly as an uninterrupted one. ``export``: the
        model ``litepose.load_checkpoint`` gives for the file (fixed-subnet training: the standalone
        subnet), while the file resumes ``model`` (the supernet).
        """
        rng = gather_rng_states()
        if self.dist.is_main:
            extra = {"best_ap": best, "synthpose_version": self.data_version(), "config": self.cfg.to_dict()}
            if partial:
                extra["partial_epoch"] = partial
            save_training_state(
                self.out / "last.pth", model, optimizer, scheduler, epoch=epoch, step=step, scaler=scaler, rng=rng,
                extra=extra, export=export,
            )  # fmt: skip
        D.barrier()
