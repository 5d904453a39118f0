"""The few process-group helpers that library code below the trainer needs (a leaf: torch only).

:mod:`litepose.engine.distributed` (the trainer's process group: setup, collectives, clear errors)
builds on these; :mod:`litepose.models.weights` uses them so that under ``torchrun`` rank 0 downloads
first, without the models package importing the engine above it. Without a process group every
helper is the identity.
"""

from __future__ import annotations

from typing import Any

import torch.distributed as dist

__all__ = ["active", "broadcast_object", "world_size", "rank"]


def active() -> bool:
    """A default process group exists (launched by ``torchrun``; world size 1 included)."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """The number of processes in the default group (1 without one)."""
    return dist.get_world_size() if active() else 1


def rank() -> int:
    """This process's rank in the default group (0 without one)."""
    return dist.get_rank() if active() else 0


def broadcast_object(obj: Any) -> Any:
    """Send rank 0's picklable object to every process (rank 0's decisions, metrics, errors)."""
    if active():
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]
    return obj
