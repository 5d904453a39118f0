"""Faster CPU training of BatchNorm and the activation after it.

In LitePose training on CPU, aten's training-mode BatchNorm in channels_last (its backward most of
all) and the separate ReLU6 passes after it took about a third of a step: each moves the same
activation tensor through memory again. Here BatchNorm followed by nothing, ReLU or ReLU6 runs
in two passes forward and two backward, with a small C kernel
(``_csrc/batchnorm.c``, in the library that :mod:`litepose.native` compiles on first use), keeping only
the input for backward (the activation's mask is recomputed from it).

:class:`FusedSequential` is an ``nn.Sequential`` (same children, names and state_dict) whose
training forward sends each ``BatchNorm2d`` (and the ``ReLU`` / ``ReLU6`` right after it) through
one C-kernel step when the fast path applies:

- a plain ``nn.BatchNorm2d`` in training mode, affine, tracking running stats with a momentum
  (not the cumulative average), without hooks on it or on the activation;
- a CPU float32 4-D input, contiguous in channels_last, grad mode on, outside TorchScript,
  tracing, ``torch.compile`` and autocast.

Everything else (eval mode, SyncBatchNorm, CUDA, NCHW inputs, recalibration under no_grad) runs the
children one by one as ``nn.Sequential`` does. Values, gradients and running statistics equal
aten's within float32 rounding. ``LITEPOSE_FAST_BN=0`` turns the fast path off.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .. import native
from .fastconv import _autocast_on, _compiling

__all__ = ["FusedSequential", "fast_bn_enabled", "ACTIVATIONS"]

ENV_ENABLE = "LITEPOSE_FAST_BN"
#: activation module types fused into the BatchNorm before them -> the kernel's activation code
ACTIVATIONS: dict[type, int] = {nn.ReLU: 1, nn.ReLU6: 2}


def fast_bn_enabled() -> bool:
    """False when the environment variable ``LITEPOSE_FAST_BN`` is 0 / false / no / off."""
    return os.environ.get(ENV_ENABLE, "1").strip().lower() not in ("0", "false", "no", "off")


def _hooked(m: nn.Module) -> bool:
    return bool(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks)


def _applies(x: Tensor, bn: nn.Module) -> bool:
    """The fast path's conditions (module docstring), cheapest first."""
    return (
        type(bn) is nn.BatchNorm2d
        and bn.training
        and bn.affine
        and bn.track_running_stats
        and bn.momentum is not None
        and torch.is_grad_enabled()
        and x.dim() == 4
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and bn.weight.dtype == torch.float32
        and bn.weight.is_contiguous()
        and bn.bias.is_contiguous()
        and x.shape[0] * x.shape[2] * x.shape[3] > 1
        and x.is_contiguous(memory_format=torch.channels_last)
        and not _hooked(bn)
        and not torch.jit.is_tracing()
        and not _compiling()
        and not _autocast_on()
        and fast_bn_enabled()
        and native.load() is not None
    )


class _BatchNormActFn(torch.autograd.Function):
    """Training-mode BatchNorm + activation; also returns the batch mean and biased variance."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, eps: float, act: int) -> tuple[Tensor, Tensor, Tensor]:  # type: ignore[override]
        n, c, h, w = x.shape
        m = n * h * w
        y = torch.empty_like(x, memory_format=torch.channels_last)
        # the kernels write float32, whatever torch's default dtype (torch.set_default_dtype)
        stats = torch.empty(5, c, dtype=torch.float32)  # mean, biased var, a = gamma * invstd, beta, invstd
        rc = native.load().litepose_bn_forward(
            x.data_ptr(), y.data_ptr(), weight.data_ptr(), bias.data_ptr(), eps, m, c, act, stats.data_ptr(),
            torch.get_num_threads(),
        )  # fmt: skip
        if rc:
            raise MemoryError("litepose_bn_forward: out of memory")
        ctx.save_for_backward(x, stats)
        ctx.act = act
        mean, var = stats[0], stats[1]
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx, dy: Tensor, _dm: Tensor, _dv: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, stats = ctx.saved_tensors
        n, c, h, w = x.shape
        dy = dy.contiguous(memory_format=torch.channels_last)
        dx = torch.empty_like(x, memory_format=torch.channels_last) if ctx.needs_input_grad[0] else None
        grads = torch.empty(2, c, dtype=torch.float32)  # dgamma, dbeta
        rc = native.load().litepose_bn_backward(
            x.data_ptr(), dy.data_ptr(), None if dx is None else dx.data_ptr(), stats.data_ptr(), n * h * w, c,
            ctx.act, grads.data_ptr(), torch.get_num_threads(),
        )  # fmt: skip
        if rc:
            raise MemoryError("litepose_bn_backward: out of memory")
        dw = grads[0] if ctx.needs_input_grad[1] else None
        db = grads[1] if ctx.needs_input_grad[2] else None
        return dx, dw, db, None, None


def _fused(x: Tensor, bn: nn.BatchNorm2d, code: int) -> Tensor:
    """``act(bn(x))`` through the kernel (``code``: 0 none, 1 ReLU, 2 ReLU6), running statistics
    updated as ``nn.BatchNorm2d`` does."""
    y, mean, var = _BatchNormActFn.apply(x, bn.weight, bn.bias, bn.eps, code)
    with torch.no_grad():
        m = x.numel() // x.shape[1]
        bn.num_batches_tracked.add_(1)
        bn.running_mean.mul_(1 - bn.momentum).add_(mean, alpha=bn.momentum)
        bn.running_var.mul_(1 - bn.momentum).add_(var, alpha=bn.momentum * m / (m - 1))
    return y


class FusedSequential(nn.Sequential):
    """An ``nn.Sequential`` whose training forward fuses each BatchNorm2d with the ReLU / ReLU6 after
    it (module docstring); in eval mode, TorchScript and export it is ``nn.Sequential``."""

    def forward(self, input: Tensor) -> Tensor:
        if torch.jit.is_scripting():
            for module in self:
                input = module(input)
            return input
        return self._train_forward(input)

    @torch.jit.unused
    def _train_forward(self, x: Tensor) -> Tensor:
        mods = list(self._modules.values())
        i, n = 0, len(mods)
        while i < n:
            mod = mods[i]
            if isinstance(mod, nn.BatchNorm2d) and _applies(x, mod):
                nxt = mods[i + 1] if i + 1 < n else None
                code = ACTIVATIONS.get(type(nxt), 0) if nxt is not None and not _hooked(nxt) else 0
                x = _fused(x, mod, code)
                i += 2 if code else 1
                continue
            x = mod(x)
            i += 1
        return x
