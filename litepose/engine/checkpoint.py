"""Training-state checkpoints for exact resume.

A training state file holds everything needed to continue a run as if it had never stopped:
the model, optimizer, scheduler (and AMP scaler) state dicts, the epoch and step counters, and
the random number generator states of Python ``random``, NumPy's global generator, torch's CPU
generator and every CUDA device. Everything is stored as tensors, lists and plain numbers, so
the file loads with ``torch.load(..., weights_only=True)``. Files are written atomically
(temporary file in the same folder, then ``os.replace``): a run killed while saving leaves the
previous file intact.

When the model is a LitePose network the file also carries the model's self-description
(``"litepose"`` key) and its weights under ``"model"``, so ``litepose.load_checkpoint`` reads
a training checkpoint directly. ``export=`` names another model for ``load_checkpoint`` to give
(fixed-subnet training: the standalone subnet); its weights go under ``"state_dict"``, which
``load_checkpoint`` reads before ``"model"``, while ``"model"`` keeps what training resumes.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import one_line
from ..models.checkpoint import CheckpointError, _torch_load, atomic_save, checkpoint_metadata

__all__ = [
    "TRAIN_STATE_FORMAT",
    "capture_rng_state",
    "restore_rng_state",
    "gather_rng_states",
    "unwrap_model",
    "save_training_state",
    "load_training_state",
    "restore_training_state",
]

#: Value of the ``"format"`` key that marks a litepose training-state file.
TRAIN_STATE_FORMAT = "litepose-train-state-1"


def capture_rng_state() -> dict[str, Any]:
    """The states of Python ``random``, NumPy's global generator, torch CPU and all CUDA devices.

    Only tensors, lists and plain numbers (``weights_only``-safe). Explicit generators
    (``numpy.random.Generator``, ``torch.Generator`` objects) are not global state and are
    not included.
    """
    version, mt, gauss_next = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": {"version": int(version), "state": torch.tensor(mt, dtype=torch.int64), "gauss_next": gauss_next},
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": [],
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Set every global generator back to a state from :func:`capture_rng_state`.

    CUDA states are restored for the devices present (as many as both sides have).
    """
    try:
        py, npy = state["python"], state["numpy"]
        random.setstate((int(py["version"]), tuple(int(v) for v in py["state"].tolist()), py["gauss_next"]))
        keys = np.asarray(npy["keys"].tolist(), dtype=np.uint32)
        np.random.set_state((npy["name"], keys, int(npy["pos"]), int(npy["has_gauss"]), float(npy["cached_gaussian"])))
        torch.set_rng_state(state["torch"].cpu())
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"not an RNG state captured by capture_rng_state (problem: {e!r})") from None
    cuda = list(state.get("cuda") or [])
    if cuda and torch.cuda.is_available():
        n = min(len(cuda), torch.cuda.device_count())
        for i in range(n):
            torch.cuda.set_rng_state(cuda[i].cpu(), i)


def gather_rng_states() -> list[dict[str, Any]]:
    """Every rank's :func:`capture_rng_state`, indexed by rank (one entry without DDP).

    Collective: call it on all ranks, then let rank 0 save the list.
    """
    import torch.distributed as dist

    mine = capture_rng_state()
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [mine]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, mine)
    return [_to_cpu(s) for s in out]


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare module inside DistributedDataParallel / DataParallel / torch.compile wrappers."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def save_training_state(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    *,
    epoch: int,
    step: int,
    scaler: Any = None,
    rng: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
    export: nn.Module | None = None,
) -> Path:
    """Write a training state atomically; returns the path.

    ``epoch`` is the number of completed epochs (the epoch to run next), ``step`` the number of
    optimizer steps taken. ``rng`` defaults to this process's :func:`capture_rng_state`; under
    DDP pass :func:`gather_rng_states` (a list indexed by rank). ``extra`` holds plain values
    (best metric, config, ...) and must be ``weights_only``-safe. ``export``: the model that
    ``litepose.load_checkpoint`` gives for this file instead of ``model`` (self-description
    and weights under ``"litepose"`` / ``"state_dict"``); resuming still restores ``model``.
    """
    bare = unwrap_model(model)
    state: dict[str, Any] = {
        "format": TRAIN_STATE_FORMAT,
        "model": {k: v.detach().cpu() for k, v in bare.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "epoch": int(epoch),
        "step": int(step),
        "rng": _to_cpu(dict(rng) if isinstance(rng, Mapping) else list(rng))
        if rng is not None
        else capture_rng_state(),
        "extra": dict(extra) if extra else {},
    }
    shown = bare if export is None else unwrap_model(export)
    if export is not None:
        state["state_dict"] = {k: v.detach().cpu() for k, v in shown.state_dict().items()}
    if hasattr(shown, "num_joints") and (hasattr(shown, "spec") or hasattr(shown, "max_spec")):
        state["litepose"] = checkpoint_metadata(shown)
    return atomic_save(state, path)


def load_training_state(path: str | Path) -> dict[str, Any]:
    """Read a training state file (on the CPU, ``weights_only=True``), checking its format."""
    path = Path(path)
    state = _torch_load(path)
    if not isinstance(state, dict) or state.get("format") != TRAIN_STATE_FORMAT:
        raise CheckpointError(
            f"{path}: not a litepose training state (no format {TRAIN_STATE_FORMAT!r}); to start from "
            "model weights only, fine-tune from it instead of resuming"
        )
    return state


def restore_training_state(
    state: Mapping[str, Any] | str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: Any = None,
    *,
    rank: int = 0,
    restore_rng: bool = True,
    where: str | None = None,
) -> dict[str, Any]:
    """Load a training state into live objects; returns ``{"epoch", "step", "extra"}``.

    ``state`` is a dict from :func:`load_training_state` or a path. With per-rank RNG states
    the entry ``rank`` is restored (``rank % len`` if the world size changed, which cannot be
    an exact resume anyway). ``where`` names the state in errors (its path).
    """
    where = where or "training state"
    if not isinstance(state, Mapping):
        where = str(state)
        state = load_training_state(state)
    bare = unwrap_model(model)
    try:
        bare.load_state_dict(state["model"])
    except RuntimeError as e:
        raise CheckpointError(f"{where}: model weights do not fit the model: {one_line(str(e), 400)}") from None
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        if obj is None:
            continue
        if state.get(name) is None:
            raise CheckpointError(f"{where}: has no {name} state to restore")
        obj.load_state_dict(state[name])
    if restore_rng and state.get("rng") is not None:
        rng = state["rng"]
        restore_rng_state(rng[rank % len(rng)] if isinstance(rng, list) else rng)
    return {"epoch": int(state["epoch"]), "step": int(state["step"]), "extra": dict(state.get("extra") or {})}
