"""Distributed training through PyTorch's own engine.

Launch with ``torchrun`` (which sets RANK / LOCAL_RANK / WORLD_SIZE / MASTER_ADDR): this module
only reads those variables, initialises the default process group (gloo on CPU, NCCL on CUDA)
with a configurable timeout and offers the few helpers the trainer needs. A process launched by
torchrun always gets a process group, world size 1 included, so a 1-GPU torchrun run takes the
same collectives as an 8-GPU one. A plain ``python -m litepose train`` runs as a single process
without any process group; every helper is then the identity.

Collectives run on the backend's device: NCCL only takes CUDA tensors, so
:func:`all_reduce_mean` moves its tensor to the current CUDA device and back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from ..device import pick_device

__all__ = [
    "DistInfo",
    "setup",
    "cleanup",
    "barrier",
    "all_reduce_mean",
    "all_reduce_max",
    "broadcast_object",
    "gather_objects",
    "launched_by_torchrun",
]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    group: bool = False  # a default process group exists (torchrun), world size 1 included

    @property
    def enabled(self) -> bool:
        """Data parallel: more than one process (DDP wrapping, DistributedSampler shards)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True in a process started by torchrun (any world size, 1 included)."""
    env = os.environ
    return "TORCHELASTIC_RUN_ID" in env or ("LOCAL_RANK" in env and "WORLD_SIZE" in env)


def setup(device: str = "auto", timeout_min: float = 30.0) -> DistInfo:
    """Initialise the process group when launched by torchrun; returns this process's place.

    ``timeout_min`` bounds every collective: a rank that waits longer (another rank crashed,
    or spends longer alone than that) fails with an error instead of hanging forever.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local)
    if (world > 1 or launched_by_torchrun()) and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=float(timeout_min)))
    return DistInfo(rank, local, world, dev, group=_active())


def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


def backend() -> str | None:
    """The default group's backend (``"gloo"``, ``"nccl"``), ``None`` without a process group."""
    return str(dist.get_backend()) if _active() else None


def _collective_device() -> torch.device:
    """Where collective tensors must live: the current CUDA device for NCCL, else the CPU."""
    if backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def cleanup() -> None:
    if _active():
        dist.destroy_process_group()


def barrier() -> None:
    if not _active():
        return
    if backend() == "nccl":
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def all_reduce_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over all processes (identity without a process group).

    Reduced on the backend's device (CUDA for NCCL); returned on ``values``'s device.
    """
    if not _active():
        return values
    x = values.detach().to(_collective_device(), copy=True)
    dist.all_reduce(x, op=dist.ReduceOp.SUM)
    x /= dist.get_world_size()
    return x.to(values.device)


def all_reduce_max(value: float) -> float:
    """The largest of every process's ``value`` (``value`` itself without a process group): how the
    ranks agree on a flag that only some of them raised (a stop signal, a non-finite loss)."""
    if not _active():
        return value
    x = torch.tensor([float(value)], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(x, op=dist.ReduceOp.MAX)
    return float(x.item())


def broadcast_object(obj: Any) -> Any:
    """Send rank 0's picklable object to every process (rank 0's decisions, metrics)."""
    if _active():
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]
    return obj


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's picklable object, indexed by rank (``[obj]`` without a process group)."""
    if not _active():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
