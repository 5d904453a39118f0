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

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from ..device import pick_device
from ..dist import active as _active
from ..dist import broadcast_object

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
    "peer_errors",
    "peer_failure",
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


class _Group:
    timeout_min: float | None = None  # the process group's timeout, for messages


_group = _Group()


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
        try:
            dist.init_process_group(backend=backend, timeout=timedelta(minutes=float(timeout_min)))
        except RuntimeError as e:  # DistStoreError / DistNetworkError: the rendezvous failed or timed out
            from ..errors import one_line

            where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
            raise ConnectionError(
                f"rank {rank} of {world}: could not join the process group at {where} within "
                f"train.dist_timeout_min ({float(timeout_min):g} min): are the other ranks started, and is that "
                f"address reachable? ({one_line(str(e), 200)})"
            ) from e
        _group.timeout_min = float(timeout_min)
    return DistInfo(rank, local, world, dev, group=_active())


#: How gloo and NCCL word a collective that waited past the timeout, and a peer that went away
#: (``RuntimeError`` from gloo; ``DistBackendError``, a ``RuntimeError``, from NCCL).
_TIMEOUT_WORDS = ("timed out", "timeout")
_PEER_WORDS = ("connection reset", "connection closed", "broken pipe", "connection refused", "communicator was aborted")


def peer_failure(e: BaseException) -> OSError | None:
    """The error a failed collective means, as one clear ``OSError`` naming this rank and the
    timeout (a ``TimeoutError`` when it waited past ``train.dist_timeout_min``, a
    ``ConnectionError`` when another rank went away), or None when ``e`` is something else."""
    if not isinstance(e, RuntimeError) or not _active():
        return None
    text = str(e)
    low = text.lower()
    backend_error = isinstance(e, getattr(dist, "DistError", ()))
    rank, world = dist.get_rank(), dist.get_world_size()
    from ..errors import one_line

    detail = one_line(text.split(" This is typically caused", 1)[0], 200)
    if any(w in low for w in _TIMEOUT_WORDS):
        limit = f"{_group.timeout_min:g} min" if _group.timeout_min is not None else "its timeout"
        return TimeoutError(
            f"rank {rank} of {world}: waited longer than train.dist_timeout_min ({limit}) for the other ranks in a "
            "collective operation: another rank died (see its own error), is stuck, or spent longer alone "
            f"than that (raise train.dist_timeout_min) ({detail})"
        )
    if any(w in low for w in _PEER_WORDS):
        return ConnectionError(
            f"rank {rank} of {world}: lost the connection to another rank, which most likely died or was "
            f"killed (see its own error) ({detail})"
        )
    if backend_error:
        return OSError(
            f"rank {rank} of {world}: the process group ({backend()}) failed; if another rank died, its own "
            f"error says why ({detail})"
        )
    return None


@contextlib.contextmanager
def peer_errors() -> Iterator[None]:
    """Turn a collective's timeout or a dead peer (:func:`peer_failure`) into one clear error."""
    try:
        yield
    except RuntimeError as e:
        clear = peer_failure(e)
        if clear is None:
            raise
        raise clear from e


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


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's picklable object, indexed by rank (``[obj]`` without a process group)."""
    if not _active():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
