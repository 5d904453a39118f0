"""Device choice, in one place: ``auto`` means the (local) CUDA device when there is one, else the CPU.

Every command's ``--device``, :class:`~litepose.Predictor`, training and ``litepose transfer``
resolve their device here, so the same name means the same device everywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported on use: the command line's option definitions read AUTO
    import torch

__all__ = ["AUTO", "pick_device"]

#: The default device everywhere: CUDA when available, else CPU.
AUTO = "auto"


def pick_device(name: str | torch.device = AUTO, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:<local_rank>`` when CUDA is available, else CPU; other names as torch reads them.

    A bare ``cuda`` becomes ``cuda:<local_rank>``; asking for CUDA where there is none is a
    ``ValueError`` (one clear line, not a failure at the first tensor).
    """
    import torch

    if isinstance(name, str) and name.strip().lower() == AUTO:
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device {name!r} is not a torch device such as cpu, cuda, cuda:1 or auto ({e})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(name)!r} requested but CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device(f"cuda:{local_rank}")
    return dev
