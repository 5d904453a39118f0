"""BatchNorm folding: an inference copy of a LitePose with every BatchNorm merged into the
convolution (or pair of transposed convolutions) before it.

The folded network computes the same function (within float rounding, < 1e-4) with fewer
ops; export and the quantised CPU backends start from it.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .litepose import InvertedBottleneck, LitePose, SepConv

__all__ = ["fold_batchnorm"]


def _scale_shift(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


def _fold_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    scale, shift = _scale_shift(bn)
    out = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
        conv.dilation, conv.groups, bias=True,
    )  # fmt: skip
    out.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    base = conv.bias if conv.bias is not None else torch.zeros_like(shift)
    out.bias.copy_(base * scale + shift)
    return out


def _fold_deconv(deconv: nn.ConvTranspose2d, scale: torch.Tensor, shift: torch.Tensor | None) -> nn.ConvTranspose2d:
    out = nn.ConvTranspose2d(
        deconv.in_channels, deconv.out_channels, deconv.kernel_size, deconv.stride, deconv.padding,
        deconv.output_padding, deconv.groups, bias=shift is not None, dilation=deconv.dilation,
    )  # fmt: skip
    out.weight.copy_(deconv.weight * scale.view(1, -1, 1, 1))
    if shift is not None:
        out.bias.copy_(shift)
    return out


def _fold_seq(seq: nn.Sequential, conv_idx: int = 0, bn_idx: int = 1) -> None:
    seq[conv_idx] = _fold_conv(seq[conv_idx], seq[bn_idx])
    seq[bn_idx] = nn.Identity()


@torch.no_grad()
def fold_batchnorm(model: LitePose) -> LitePose:
    """Return an eval-mode copy of ``model`` with all BatchNorms folded (the input is unchanged)."""
    if not isinstance(model, LitePose):
        raise TypeError(f"fold_batchnorm takes a LitePose, got {type(model).__name__}")
    m = copy.deepcopy(model).eval()
    _fold_seq(m.first[0])
    _fold_seq(m.first[1])
    _fold_seq(m.first, 2, 3)
    for stage in m.stage:
        for block in stage:
            assert isinstance(block, InvertedBottleneck)
            _fold_seq(block.inv)
            _fold_seq(block.depth_conv)
            _fold_seq(block.point_conv)
    for i, bnrelu in enumerate(m.deconv_bnrelu):
        scale, shift = _scale_shift(bnrelu[0])
        m.deconv_refined[i] = _fold_deconv(m.deconv_refined[i], scale, shift)
        m.deconv_raw[i] = _fold_deconv(m.deconv_raw[i], scale, None)
        bnrelu[0] = nn.Identity()
    for heads in (m.final_refined, m.final_raw):
        for sep in heads:
            assert isinstance(sep, SepConv)
            _fold_seq(sep.conv)
    m.folded = True
    return m
