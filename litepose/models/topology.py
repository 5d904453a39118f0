"""LitePose's topology, walked once: every layer of an architecture in forward order, with its
channels and feature-map sizes.

:func:`walk` is the one place that knows how the stages chain, which backbone feature each head
step fuses and where the outputs come from. Three users read it: :func:`~litepose.models.litepose.build_layers`
(the modules), :func:`~litepose.models.profile.profile_model` (params and MACs) and the search's
latency model (:func:`litepose.search.cost.layers_of`). Pure arithmetic, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from .spec import ArchSpec

__all__ = ["Stem", "Block", "Fusion", "Output", "Layer", "walk"]

#: A feature map's (height, width).
Size = tuple[int, int]


@dataclass(frozen=True)
class Stem:
    """conv3x3 s2 (3 -> 32) + dw3x3 (32) + 1x1 (32 -> ``cout``): ``size_in`` the image, ``size_out`` half of it."""

    cout: int
    size_in: Size
    size_out: Size


@dataclass(frozen=True)
class Block:
    """One inverted bottleneck: block ``index`` of stage ``stage`` (both from 0)."""

    stage: int
    index: int
    cin: int
    cout: int
    expansion: float
    kernel: int
    stride: int
    size_in: Size
    size_out: Size


@dataclass(frozen=True)
class Fusion:
    """Head step ``step``: deconv 4x4 s2 of the head feature (``cin_head``) + deconv of a backbone
    feature (``cin_raw``), summed to ``cout`` channels, BN, ReLU."""

    step: int
    cin_head: int
    cin_raw: int
    cout: int
    size_in: Size
    size_out: Size


@dataclass(frozen=True)
class Output:
    """Output ``index`` (0: 1/4 res, heatmaps + tags; 1: 1/2 res, heatmaps): SepConv of the head
    feature (``cin_head``) + SepConv of a backbone feature (``cin_raw``), ``cout`` maps at ``size``."""

    index: int
    cin_head: int
    cin_raw: int
    cout: int
    size: Size


Layer = Stem | Block | Fusion | Output


def walk(spec: ArchSpec, num_joints: int, size: Size | None = None) -> list[Layer]:
    """Every layer of ``spec`` with ``num_joints`` outputs, in forward order, at input ``size``
    ((height, width); default the spec's square input size).

    Sizes are the input's divided by the cumulative stride (``h // 4``, not ``h // 2 // 2``: the
    same for the multiples of 16 the network takes).
    """
    h, w = (spec.input_size, spec.input_size) if size is None else size

    def at(stride: int) -> Size:
        return (h // stride, w // stride)

    out: list[Layer] = [Stem(spec.stem_channels, (h, w), at(2))]
    channels = [spec.stem_channels]  # the backbone features: stem, stage 1..4
    res, cin = 2, spec.stem_channels
    for s, st in enumerate(spec.stages):
        for i, (t, k) in enumerate(st.blocks):
            stride = st.stride if i == 0 else 1
            out.append(Block(s, i, cin, st.channels, t, k, stride, at(res), at(res * stride)))
            res *= stride
            cin = st.channels
        channels.append(st.channels)
    # Head step i fuses the previous head feature (first: the last stage) with backbone feature -(i+2);
    # after steps 2 and 3 an output adds the backbone feature -(i+3).
    head = channels[-1]
    for i, f in enumerate(spec.deconv):
        out.append(Fusion(i, head, channels[-i - 2], f, at(res), at(res // 2)))
        res //= 2
        head = f
        if i > 0:
            cout = 2 * num_joints if i == 1 else num_joints
            out.append(Output(i - 1, f, channels[-i - 3], cout, at(res)))
    return out
