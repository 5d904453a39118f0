"""Learning-rate schedules of the trainer.

- ``"step"`` (the original's): constant, times ``lr_factor`` at each epoch in ``lr_steps``
  (``torch.optim.lr_scheduler.MultiStepLR``, stepped once per epoch).
- ``"cosine"``: linear warm-up over ``warmup_steps`` optimizer steps, then a cosine decay from the
  base rate to ``min_lr_factor`` times it at ``horizon`` steps, stepped once per optimizer step.
  A run bounded by ``train.time_limit_min`` does not know its number of steps in advance: the
  trainer re-estimates the horizon after each epoch from the measured pace
  (:meth:`CosineSchedule.set_horizon`), so the rate reaches its floor about when the budget ends.
  The horizon is part of the state, so a resumed run continues on the same curve.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .config import SCHEDULES  # the names, where the config checks them

__all__ = ["CosineSchedule", "SCHEDULES", "fit_horizon"]


class CosineSchedule:
    """Per-step warm-up + cosine decay; ``state_dict`` / ``load_state_dict`` for exact resume."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, horizon: int, warmup_steps: int = 0, min_lr_factor: float = 0.0
    ) -> None:
        self.optimizer = optimizer
        self.base_lrs = [float(g.get("initial_lr", g["lr"])) for g in optimizer.param_groups]
        self.horizon = max(1, int(horizon))
        self.warmup_steps = max(0, int(warmup_steps))
        self.min_lr_factor = float(min_lr_factor)
        self.step_count = 0
        self._apply()

    def factor(self, step: int) -> float:
        """The multiplier of the base rate before optimizer step ``step`` (0-based)."""
        if self.warmup_steps and step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = max(1, self.horizon - self.warmup_steps)
        t = min(1.0, (step - self.warmup_steps) / span)
        return self.min_lr_factor + (1 - self.min_lr_factor) * 0.5 * (1 + math.cos(math.pi * t))

    def _apply(self) -> None:
        f = self.factor(self.step_count)
        for g, lr in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = lr * f

    def step(self) -> None:
        """Advance by one optimizer step."""
        self.step_count += 1
        self._apply()

    def set_horizon(self, horizon: int) -> None:
        """Move the end of the decay (never before the current step); the rate follows at once."""
        self.horizon = max(int(horizon), self.step_count + 1, self.warmup_steps + 1)
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        return {
            "horizon": self.horizon,
            "warmup_steps": self.warmup_steps,
            "min_lr_factor": self.min_lr_factor,
            "step_count": self.step_count,
            "base_lrs": list(self.base_lrs),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.horizon = int(state["horizon"])
        self.warmup_steps = int(state["warmup_steps"])
        self.min_lr_factor = float(state["min_lr_factor"])
        self.step_count = int(state["step_count"])
        self.base_lrs = [float(v) for v in state["base_lrs"]]
        self._apply()


def fit_horizon(scheduler: CosineSchedule, train: Any, step: int, minutes: float, epochs_done: int) -> None:
    """Time-limited cosine runs (``train.time_limit_min``): end the decay where the budget is expected
    to end, at rank 0's pace (``step`` and rank 0's broadcast ``minutes``: equal on every rank)."""
    if train.time_limit_min is None or minutes <= 0:
        return
    pace = step / minutes  # steps per minute so far, validation included
    per_epoch = step / max(1, epochs_done)
    horizon = min(train.epochs * per_epoch, step + max(0.0, train.time_limit_min - minutes) * pace)
    scheduler.set_horizon(round(horizon))
