"""The LitePose network: a MobileNetV2-style single-branch backbone with large-kernel depthwise
convs and the fusion deconv head.

Module names and tensor layouts equal the original ``lib/models/pose_mobilenet.py``, so its
released state_dicts load unchanged. Its Sequentials are :class:`FusedSequential` and its depthwise
convs :class:`DepthwiseConv2d` (plain ``nn.Sequential`` / ``nn.Conv2d`` subclasses that train
faster on CPU; identical in eval mode and export). ``forward`` returns the two raw output maps
``[1/4 res: K heatmaps + K tags, 1/2 res: K heatmaps]``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .fastbn import FusedSequential
from .fastconv import DepthwiseConv2d
from .spec import ArchSpec, expanded_width
from .topology import Block, Fusion, Stem, walk

__all__ = [
    "LitePose",
    "InvertedBottleneck",
    "SepConv",
    "conv_bn_act",
    "build_layers",
    "init_output_layers",
    "INPUT_MULTIPLE",
]

#: Input sides must be multiples of this (the backbone downsamples by 16).
INPUT_MULTIPLE = 16


def conv_bn_act(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Conv (no bias) + BatchNorm + ReLU6, as a Sequential (keys ``0``, ``1``).

    A depthwise conv (``groups == cin == cout``) is a :class:`DepthwiseConv2d`: an ``nn.Conv2d``
    with the same parameters that trains faster on CPU. The Sequential is a
    :class:`FusedSequential`, which trains BatchNorm + ReLU6 as one faster step on CPU.
    """
    conv = DepthwiseConv2d if groups > 1 and groups == cin == cout else nn.Conv2d
    return FusedSequential(
        conv(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class InvertedBottleneck(nn.Module):
    """Expand 1x1 -> depthwise kxk -> project 1x1; residual iff stride 1 and cin == cout."""

    def __init__(self, cin: int, cout: int, stride: int = 1, kernel: int = 7, expansion: float = 6) -> None:
        super().__init__()
        hidden = expanded_width(cin, expansion)
        self.inv = conv_bn_act(cin, hidden, 1)
        self.depth_conv = conv_bn_act(hidden, hidden, kernel, stride, groups=hidden)
        self.point_conv = FusedSequential(nn.Conv2d(hidden, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout))
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.point_conv(self.depth_conv(self.inv(x)))
        return out + x if self.use_residual else out


class SepConv(nn.Module):
    """Depthwise kxk + BN + ReLU + pointwise 1x1 (no BN after): the head's output layer."""

    def __init__(self, cin: int, cout: int, kernel: int = 5) -> None:
        super().__init__()
        self.conv = FusedSequential(
            DepthwiseConv2d(cin, cin, kernel, 1, kernel // 2, groups=cin, bias=False),
            nn.BatchNorm2d(cin),
            nn.ReLU(inplace=True),
            nn.Conv2d(cin, cout, 1, 1, 0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _deconv(cin: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, output_padding=0, bias=False)


BlockFactory = Callable[[int, int, int, int, float], nn.Module]


def build_layers(net: nn.Module, spec: ArchSpec, num_joints: int, block: BlockFactory) -> None:
    """Create LitePose's layers on ``net`` with the original's module names, from the topology
    :func:`~litepose.models.topology.walk` gives.

    ``block(cin, cout, stride, kernel, expansion)`` makes one backbone block; the standalone
    network and the supernet differ only there. Sets ``net.channels`` = (stem, stage 1..4).
    Modules are created in the original's order (stem, stages, head steps, outputs), so a seeded
    initialisation gives the original's weights.
    """
    stages: list[list[nn.Module]] = [[] for _ in spec.stages]
    refined, raw, bnrelu, outputs = [], [], [], []
    for layer in walk(spec, num_joints):
        if isinstance(layer, Stem):
            net.first = FusedSequential(
                conv_bn_act(3, 32, 3, 2),
                conv_bn_act(32, 32, 3, 1, groups=32),
                nn.Conv2d(32, layer.cout, 1, 1, 0, bias=False),
                nn.BatchNorm2d(layer.cout),
            )
        elif isinstance(layer, Block):
            stages[layer.stage].append(block(layer.cin, layer.cout, layer.stride, layer.kernel, layer.expansion))
        elif isinstance(layer, Fusion):
            refined.append(_deconv(layer.cin_head, layer.cout))
            raw.append(_deconv(layer.cin_raw, layer.cout))
            bnrelu.append(FusedSequential(nn.BatchNorm2d(layer.cout), nn.ReLU(inplace=True)))
        else:
            outputs.append(layer)
    net.stage = nn.ModuleList(nn.Sequential(*blocks) for blocks in stages)
    net.channels = (spec.stem_channels, *(st.channels for st in spec.stages))
    net.deconv_refined = nn.ModuleList(refined)
    net.deconv_raw = nn.ModuleList(raw)
    net.deconv_bnrelu = nn.ModuleList(bnrelu)
    # Outputs after head steps 2 (1/4 res: heatmaps + tags) and 3 (1/2 res: heatmaps).
    net.final_refined = nn.ModuleList([SepConv(o.cin_head, o.cout) for o in outputs])
    net.final_raw = nn.ModuleList([SepConv(o.cin_raw, o.cout) for o in outputs])


def init_output_layers(net: nn.Module, std: float = 0.001) -> int:
    """Re-initialise the last 1x1 conv of every output layer (``final_*``) with N(0, std^2) weights.

    PyTorch's default init makes the untrained network output maps of magnitude ~0.5, far from the
    near-zero heatmap targets, and the first hundreds of steps go into undoing that. Small output
    weights (HigherHRNet initialises its final layers with std 0.001) start the heatmaps near zero
    and all tags near one value, which the "max" push pulls apart from the first step. Works on
    LitePose and its supernet (same module names); returns the number of layers set.
    """
    n = 0
    for name in ("final_refined", "final_raw"):
        for layer in getattr(net, name):
            conv = layer.conv[-1]
            nn.init.normal_(conv.weight, std=std)
            n += 1
    return n


class LitePose(nn.Module):
    """LitePose built from an :class:`ArchSpec` and a number of joints.

    Attributes set for users and tools: ``spec``, ``num_joints``, ``arch`` (preset name or
    ``"custom"``), ``input_size``, and ``keypoints`` (a :class:`KeypointSet`, may be ``None``).
    """

    def __init__(self, spec: ArchSpec, num_joints: int = 17) -> None:
        super().__init__()
        from .spec import spec_name

        if num_joints < 1:
            raise ValueError(f"num_joints must be positive, got {num_joints}")
        self.spec = spec
        self.num_joints = num_joints
        self.arch = spec_name(spec)
        self.input_size = spec.input_size
        self.keypoints = None

        build_layers(self, spec, num_joints, InvertedBottleneck)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        check_input(x)
        feats = [self.first(x)]
        for stage in self.stage:
            feats.append(stage(feats[-1]))
        head, raw = feats[-1], feats[-2]
        outputs = []
        for i in range(3):
            head = self.deconv_bnrelu[i](self.deconv_refined[i](head) + self.deconv_raw[i](raw))
            raw = feats[-i - 3]
            if i > 0:
                outputs.append(self.final_refined[i - 1](head) + self.final_raw[i - 1](raw))
        return outputs

    def extra_repr(self) -> str:
        return f"arch={self.arch}, num_joints={self.num_joints}, input_size={self.input_size}"


def check_input(x: torch.Tensor) -> None:
    """Raise a clear error for inputs the network cannot take."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected input of shape (N, 3, H, W), got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % INPUT_MULTIPLE or w % INPUT_MULTIPLE:
        raise ValueError(
            f"input size {h}x{w}: both sides must be multiples of {INPUT_MULTIPLE} "
            "(pad the image, or use litepose.Predictor which resizes and pads for you)"
        )
