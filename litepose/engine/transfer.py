"""Weight transfer: a standalone subnet out of a trained supernet, with BatchNorm recalibrated.

The original copied the supernet's running BatchNorm statistics into the subnet; those were
accumulated over thousands of *different* subnets and belong to none of them (its users saw
4.7 AP straight after transfer). ``transfer`` extracts the subnet (identical weights) and then
re-estimates every BatchNorm's running mean and variance from forward passes of the subnet
itself over training images: the exact cumulative average over ``num_images`` images.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.dataset import KeypointDataset
from ..device import pick_device
from ..models import extract_subnet, load_checkpoint, save_checkpoint
from ..models.spec import ArchSpec, resolve_spec
from ..models.supernet import SuperLitePose
from ..normalization import network_input

__all__ = ["recalibrate_batchnorm", "calibration_batches", "recalibrated_subnet", "transfer"]


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
    data: str | Path | KeypointDataset,
    images: str | Path | None,
    input_size: int,
    num_images: int = 512,
    batch_size: int = 16,
    seed: int = 0,
) -> Iterator[torch.Tensor]:
    """Training-distribution image batches (the training augmentation) at ``input_size``.

    ``data`` is an annotation file / SynthPose folder, or a :class:`KeypointDataset` already
    loaded (the trainer passes its own, so validation during training reloads nothing).
    ``num_images`` images (all if <= 0) in an order drawn from ``seed``; each image's
    augmentation seed derives from ``(seed, index)``: no global generator is used or changed.
    """
    if isinstance(data, KeypointDataset):
        ds = data
    else:
        from ..data.transforms import TransformConfig

        ds = KeypointDataset(data, images, transform=TransformConfig(input_size=input_size))
    if len(ds) == 0:
        raise ValueError(f"{ds!r}: no images to recalibrate BatchNorm with")
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(ds), generator=g).tolist()
    n = min(num_images, len(ds)) if num_images > 0 else len(ds)
    for start in range(0, n, batch_size):
        idx = order[start : min(start + batch_size, n)]
        batch = torch.stack([ds[(i, input_size, (seed * 1_000_003 + i) % 2**63)]["image"] for i in idx])
        yield network_input(batch) if batch.dtype == torch.uint8 else batch  # a dataset sending uint8


def recalibrated_subnet(
    supernet: SuperLitePose,
    arch: str | Path | dict | ArchSpec,
    batches: Iterable[torch.Tensor] | None,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, int]:
    """The standalone subnet ``arch`` of ``supernet`` with BatchNorm re-estimated on ``batches``.

    Returns ``(model in eval mode on device, images seen)``; ``batches=None`` keeps the copied
    supernet statistics (0 images). Used by ``transfer`` and by the trainer's supernet validation.
    """
    spec = resolve_spec(arch)[1]
    net = extract_subnet(supernet, spec)
    net.input_size = spec.input_size
    seen = recalibrate_batchnorm(net, batches, device) if batches is not None else 0
    return net.to(device).eval(), seen


def transfer(
    supernet: str | Path | SuperLitePose,
    arch: str | Path | dict | ArchSpec,
    output: str | Path | None = None,
    *,
    data: str | Path | None = None,
    images: str | Path | None = None,
    num_images: int = 512,
    batch_size: int = 16,
    device: str | torch.device = "auto",
    seed: int = 0,
) -> tuple[nn.Module, dict[str, Any]]:
    """Extract ``arch`` from ``supernet`` and recalibrate its BatchNorm on ``data`` (if given), on
    ``device`` (:func:`litepose.device.pick_device`: ``auto`` is CUDA when available, else CPU).

    Writes a self-describing checkpoint to ``output`` when given. Returns ``(model on the CPU, summary)``.
    """
    device = pick_device(device)
    if isinstance(supernet, SuperLitePose):
        sup = supernet
    else:
        sup, info = load_checkpoint(supernet)
        if info["arch"] != "super":
            raise ValueError(f"{supernet}: is a {info['arch']} checkpoint, not a supernet")
    name, spec = resolve_spec(arch)
    batches = None
    if data is not None:
        batches = calibration_batches(data, images, spec.input_size, num_images, batch_size, seed)
    net, seen = recalibrated_subnet(sup, spec, batches, device)
    summary: dict[str, Any] = {"arch": name, "input_size": spec.input_size, "recalibrated_on": seen}
    net = net.cpu().eval()
    if output is not None:
        extra = {"transferred_from": str(supernet) if not isinstance(supernet, nn.Module) else "supernet"}
        extra["bn_recalibration_images"] = summary["recalibrated_on"]
        summary["output"] = str(save_checkpoint(net, output, extra=extra))
    return net, summary
