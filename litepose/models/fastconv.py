"""Faster CPU training of depthwise convolutions.

On CPUs, oneDNN's weight gradient of a depthwise kxk convolution in channels_last is several
times slower than its forward pass or input gradient, and LitePose (one 7x7 depthwise conv per
block) spends most of a training step there. This module keeps aten for the forward pass and
computes the weight gradient (and the stride-1 7x7 input gradient, where it measured faster than
aten; other input gradients stay aten) with a small C kernel (``_csrc/depthwise.c``, part of the
library that :mod:`litepose.native` compiles on first use). It uses ``torch.get_num_threads()`` threads.

The fast path (results equal to aten's within float32 rounding) is taken for training-mode
depthwise convs (groups == channels, square kernel 3/5/7, stride 1 or 2, padding k // 2,
dilation 1, no bias) on CPU float32 tensors whose weight needs a gradient, with grad mode on,
outside TorchScript, tracing and ``torch.compile``. Everything else (inference, CUDA, float64,
autocast, other shapes) runs plain aten. Without a C compiler aten is used silently; if
compilation fails, one warning says why and aten is used. ``LITEPOSE_FAST_CONV=0`` turns the fast
path off. The function is differentiable once (no double backward).
"""

from __future__ import annotations

import ctypes
import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .. import native

__all__ = [
    "DepthwiseConv2d",
    "depthwise_conv2d",
    "depthwise_input_grad",
    "depthwise_weight_grad",
    "fast_conv_available",
    "fast_conv_enabled",
    "supported",
]

ENV_ENABLE = "LITEPOSE_FAST_CONV"
KERNEL_SIZES = (3, 5, 7)
STRIDES = (1, 2)
#: kernel sizes whose stride-1 input gradient the C kernel computes (measured faster than aten;
#: for 3 and 5 the pass is memory-bound and aten is as fast or faster)
INPUT_GRAD_KERNEL_SIZES = (7,)


def fast_conv_enabled() -> bool:
    """False when the environment variable ``LITEPOSE_FAST_CONV`` is 0 / false / no / off."""
    return os.environ.get(ENV_ENABLE, "1").strip().lower() not in ("0", "false", "no", "off")


def _load() -> ctypes.CDLL | None:
    return native.load()


def fast_conv_available() -> bool:
    """True if the kernel is enabled and compiled (compiles it on the first call)."""
    return fast_conv_enabled() and _load() is not None


def _pair(v: int | tuple[int, ...] | list[int]) -> int | None:
    """The value of an int or of a tuple of equal ints, else None."""
    if isinstance(v, int):
        return v
    if isinstance(v, (tuple, list)) and len(v) in (1, 2) and all(isinstance(i, int) for i in v) and len(set(v)) == 1:
        return v[0]
    return None


def _autocast_on() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled()


def _compiling() -> bool:
    try:
        return torch.compiler.is_compiling()
    except AttributeError:  # torch < 2.3
        return False


def _kernel_handles(x: Tensor, grad_out: Tensor, k: int, stride: int) -> bool:
    """Whether the C kernel takes this weight gradient (CPU float32 strided tensors, k 3/5/7, stride 1/2)."""
    return (
        k in KERNEL_SIZES
        and stride in STRIDES
        and x.dim() == 4
        and grad_out.dim() == 4
        and x.device.type == "cpu"
        and grad_out.device.type == "cpu"
        and x.dtype == torch.float32
        and grad_out.dtype == torch.float32
        and x.layout == torch.strided
        and grad_out.layout == torch.strided
        and x.numel() > 0
    )


def supported(x: Tensor, weight: Tensor, stride: int, padding: int) -> bool:
    """Whether the fast path applies to this conv's shapes and types: a depthwise weight
    ``(C, 1, k, k)`` (``C`` = input channels) with k in 3/5/7, stride 1 or 2, padding k // 2, on
    CPU float32 strided tensors."""
    if x.dim() != 4 or weight.dim() != 4:
        return False
    c, one, kh, kw = weight.shape
    return (
        one == 1
        and c == x.shape[1]
        and kh == kw
        and padding == kh // 2
        and weight.device.type == "cpu"
        and weight.dtype == torch.float32
        and _kernel_handles(x, x, kh, stride)
    )


def _use_fast(x: Tensor, weight: Tensor, stride: int | None, padding: int | None) -> bool:
    """The fast path's conditions (module docstring), cheapest first."""
    if stride is None or padding is None or not torch.is_grad_enabled() or not weight.requires_grad:
        return False
    if torch.jit.is_tracing() or _compiling() or _autocast_on():
        return False
    return supported(x, weight, stride, padding) and fast_conv_enabled() and _load() is not None


def depthwise_weight_grad(x: Tensor, grad_out: Tensor, kernel_size: int, stride: int) -> Tensor:
    """Weight gradient ``(C, 1, k, k)`` of a depthwise conv with padding k // 2, from its input
    and output gradient: the C kernel where it applies, else aten."""
    c = x.shape[1]
    k, s, p = kernel_size, stride, kernel_size // 2
    ok = grad_out.shape[:2] == x.shape[:2] and _kernel_handles(x, grad_out, k, s)
    lib = _load() if ok and fast_conv_enabled() else None
    if lib is not None:
        n, _, h, w = x.shape
        ho, wo = grad_out.shape[-2:]
        dw = torch.empty(c, 1, k, k, dtype=torch.float32)  # what the kernel writes, whatever the default dtype
        rc = lib.litepose_dw_wgrad(
            x.data_ptr(), _strides(x), grad_out.data_ptr(), _strides(grad_out), dw.data_ptr(),
            n, c, h, w, ho, wo, k, s, torch.get_num_threads(),
        )  # fmt: skip
        if rc == 0:
            return dw
    weight = torch.empty(c, 1, k, k, dtype=x.dtype, device=x.device)
    return torch.ops.aten.convolution_backward(
        grad_out, x, weight, None, [s, s], [p, p], [1, 1], False, [0, 0], c, [False, True, False]
    )[1]


def _strides(t: Tensor) -> ctypes.Array:
    return (ctypes.c_int64 * 4)(*t.stride())


def depthwise_input_grad(grad_out: Tensor, x: Tensor, weight: Tensor, stride: int) -> Tensor:
    """Input gradient (shaped and laid out as ``x``) of a depthwise conv with padding k // 2:
    the C kernel for stride 1 and k in INPUT_GRAD_KERNEL_SIZES, else aten."""
    c, k = x.shape[1], weight.shape[-1]
    lib = None
    if (
        stride == 1
        and k in INPUT_GRAD_KERNEL_SIZES
        and grad_out.shape == x.shape
        and weight.shape == (c, 1, k, k)
        and weight.dtype == torch.float32
        and weight.device.type == "cpu"
        and weight.layout == torch.strided
        and fast_conv_enabled()
        and _kernel_handles(x, grad_out, k, stride)
    ):
        lib = _load()
    if lib is not None:
        n, _, h, w = x.shape
        dx = torch.empty_like(x)
        rc = lib.litepose_dw_dgrad(
            grad_out.data_ptr(), _strides(grad_out), weight.data_ptr(), _strides(weight), dx.data_ptr(), _strides(dx),
            n, c, h, w, k, torch.get_num_threads(),
        )  # fmt: skip
        if rc == 0:
            return dx
    p = k // 2
    return torch.ops.aten.convolution_backward(
        grad_out, x, weight, None, [stride, stride], [p, p], [1, 1], False, [0, 0], c, [True, False, False]
    )[0]


class _DepthwiseConvFn(torch.autograd.Function):
    """Depthwise conv: aten forward, C-kernel weight gradient (and stride-1 7x7 input gradient)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, stride: int, padding: int) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        ctx.stride = stride  # padding is k // 2 (checked by the caller)
        return F.conv2d(x, weight, None, stride, padding, 1, x.shape[1])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:  # type: ignore[override]
        x, weight = ctx.saved_tensors
        s = ctx.stride
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = depthwise_input_grad(grad_out, x, weight, s)
        if ctx.needs_input_grad[1]:
            gw = depthwise_weight_grad(x, grad_out, weight.shape[-1], s)
        return gx, gw, None, None


def depthwise_conv2d(
    x: Tensor, weight: Tensor, stride: int = 1, padding: int | None = None, *, fast: bool = True
) -> Tensor:
    """``F.conv2d(x, weight, None, stride, padding, 1, C)`` for a depthwise ``(C, 1, k, k)`` weight
    (``padding`` defaults to k // 2); with ``fast`` and the module docstring's conditions met, its
    weight gradient comes from the C kernel. Values and gradients equal aten's within rounding."""
    if padding is None:
        padding = weight.shape[-1] // 2
    if fast and _use_fast(x, weight, _pair(stride), _pair(padding)):
        return _DepthwiseConvFn.apply(x, weight, _pair(stride), _pair(padding))
    return F.conv2d(x, weight, None, stride, padding, 1, x.shape[1])


class DepthwiseConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` (same constructor, parameters and state_dict) for depthwise convs that
    trains through the fast weight gradient (:func:`depthwise_conv2d`) in training mode; eval
    mode, no_grad, TorchScript and export run ``nn.Conv2d.forward`` unchanged."""

    def forward(self, input: Tensor) -> Tensor:
        if torch.jit.is_scripting():
            return self._conv_forward(input, self.weight, self.bias)
        return self._train_forward(input)

    @torch.jit.unused
    def _train_forward(self, input: Tensor) -> Tensor:
        if (
            self.training
            and self.bias is None
            and self.groups == self.in_channels == self.out_channels
            and self.padding_mode == "zeros"
            and _pair(self.dilation) == 1
            and _use_fast(input, self.weight, _pair(self.stride), _pair(self.padding))
        ):
            return _DepthwiseConvFn.apply(input, self.weight, _pair(self.stride), _pair(self.padding))
        return self._conv_forward(input, self.weight, self.bias)
