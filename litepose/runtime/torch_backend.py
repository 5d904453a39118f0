"""Torch backends: a LitePose module with its BatchNorms folded, in channels-last memory, under
inference mode (``torch``); the module as given (``torch-eager``, what the original runs); and a
TorchScript file written by ``litepose export --format torchscript`` (``torchscript``)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.jsonio import parse_json
from ..errors import one_line
from ..preprocess import input_tensor
from .base import Backend
from .metadata import TS_EXTRA, from_strings, model_info

__all__ = ["TorchBackend", "TorchScriptBackend", "on_device"]


def on_device(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` itself when it already lives on ``device``, else a copy moved there (the caller's
    model stays where it is)."""
    param = next(iter(model.parameters()), None)
    if param is None or param.device == device:
        return model
    return copy.deepcopy(model).to(device)


class _TensorBackend(Backend):
    device: torch.device
    net: Any
    channels_last = False

    def inputs(self, images: Any) -> torch.Tensor:
        return input_tensor(images, self.device, self.info.normalization)

    @torch.inference_mode()
    def run(self, x: torch.Tensor, flip: bool) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        if flip:
            x = torch.cat([x, torch.flip(x, [3])])
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out = [o.contiguous() for o in self.net(x)] if self.channels_last else list(self.net(x))
        if not flip:
            return out, None
        n = len(x) // 2
        return [o[:n] for o in out], [o[n:] for o in out]

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


class TorchBackend(_TensorBackend):
    """A torch module on ``device``. ``eager=False`` (``torch``): BatchNorm folded
    (:func:`litepose.fold_batchnorm`, a LitePose only), channels-last on the CPU; ``eager=True``
    (``torch-eager``): the module as it is. ``model`` is the caller's module (moved copy when it
    lives elsewhere, set to eval mode); the folded copy runs."""

    def __init__(self, model: nn.Module, device: torch.device, *, eager: bool = False) -> None:
        from ..models.fold import fold_batchnorm
        from ..models.litepose import LitePose

        super().__init__(model_info(model))
        self.name = "torch-eager" if eager else "torch"
        self.device = device
        self.model = on_device(model, device).eval()
        if eager or not isinstance(model, LitePose):
            self.net = self.model
        else:
            self.net = on_device(fold_batchnorm(model), device).eval()
            self.channels_last = device.type == "cpu"
            if self.channels_last:
                self.net = self.net.to(memory_format=torch.channels_last)


class TorchScriptBackend(_TensorBackend):
    """A TorchScript file of ``litepose export --format torchscript`` (BatchNorm folded), on ``device``."""

    name = "torchscript"

    def __init__(self, path: str | Path, device: torch.device) -> None:
        extra = {TS_EXTRA: ""}
        try:
            net = torch.jit.load(str(path), map_location=device, _extra_files=extra)
        except Exception as e:
            why = one_line(str(e), 300)
            raise ValueError(f"{path}: not a TorchScript file torch can load ({why})") from None
        props = parse_json(extra[TS_EXTRA] or "{}", f"{path}: litepose metadata")
        super().__init__(from_strings(props, str(path)))
        self.device = device
        self.net = net.eval()
        self.path = Path(path)
