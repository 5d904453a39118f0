"""Weight transfer: a standalone subnet out of a trained supernet, with BatchNorm recalibrated.

The original copied the supernet's running BatchNorm statistics into the subnet; those were
accumulated over thousands of *different* subnets and belong to none of them (its users saw
4.7 AP straight after transfer). ``transfer`` extracts the subnet (identical weights) and then
re-estimates every BatchNorm's running mean and variance from forward passes of the subnet
itself over training images: the exact cumulative average over ``num_images`` images.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..models import extract_subnet, load_checkpoint, save_checkpoint
from ..models.spec import ArchSpec, resolve_spec
from ..models.supernet import SuperLitePose

__all__ = ["recalibrate_batchnorm", "calibration_batches", "transfer"]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor], device: str | torch.device = "cpu") -> int:
    """Re-estimate BatchNorm running statistics from ``batches`` of input images; returns images seen.

    Statistics are reset and accumulated as an exact cumulative average (``momentum=None``);
    weights are untouched. The model is left in eval mode.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.to(device).train()
    seen = 0
    try:
        for x in batches:
            model(x.to(device))
            seen += x.shape[0]
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom
        model.eval()
    if seen == 0:
        raise ValueError("BatchNorm recalibration got no images")
    return seen


def calibration_batches(
    data: str | Path,
    images: str | Path | None,
    input_size: int,
    num_images: int = 512,
    batch_size: int = 16,
    seed: int = 0,
) -> Iterable[torch.Tensor]:
    """Training-distribution image batches (the training augmentation) at ``input_size``."""
    from ..data.dataset import KeypointDataset
    from ..data.transforms import TransformConfig

    ds = KeypointDataset(data, images, transform=TransformConfig(input_size=input_size))
    if len(ds) == 0:
        raise ValueError(f"{data}: no images to recalibrate BatchNorm with")
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(ds), generator=g).tolist()
    n = min(num_images, len(ds)) if num_images > 0 else len(ds)
    torch.manual_seed(seed)
    for start in range(0, n, batch_size):
        idx = order[start : min(start + batch_size, n)]
        yield torch.stack([ds[i]["image"] for i in idx])


def transfer(
    supernet: str | Path | SuperLitePose,
    arch: str | Path | dict | ArchSpec,
    output: str | Path | None = None,
    *,
    data: str | Path | None = None,
    images: str | Path | None = None,
    num_images: int = 512,
    batch_size: int = 16,
    device: str = "cpu",
    seed: int = 0,
) -> tuple[nn.Module, dict[str, Any]]:
    """Extract ``arch`` from ``supernet`` and recalibrate its BatchNorm on ``data`` (if given).

    Writes a self-describing checkpoint to ``output`` when given. Returns ``(model, summary)``.
    """
    if isinstance(supernet, SuperLitePose):
        sup = supernet
    else:
        sup, info = load_checkpoint(supernet)
        if info["arch"] != "super":
            raise ValueError(f"{supernet}: is a {info['arch']} checkpoint, not a supernet")
    name, spec = resolve_spec(arch)
    net = extract_subnet(sup, spec)
    summary: dict[str, Any] = {"arch": name, "input_size": spec.input_size, "recalibrated_on": 0}
    if data is not None:
        batches = calibration_batches(data, images, spec.input_size, num_images, batch_size, seed)
        summary["recalibrated_on"] = recalibrate_batchnorm(net, batches, device)
    net = net.cpu().eval()
    if output is not None:
        extra = {"transferred_from": str(supernet) if not isinstance(supernet, nn.Module) else "supernet"}
        extra["bn_recalibration_images"] = summary["recalibrated_on"]
        summary["output"] = str(save_checkpoint(net, output, extra=extra))
    return net, summary
