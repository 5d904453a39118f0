"""The LitePose supernet: one set of weights that runs as any subnet of the search space.

Elastic dimensions, as the original ``lib/models/pose_supermobilenet.py``:

- widths: stem, every stage and every deconv layer take the leading slice of their tensors
  (the original samples multipliers {1, .75, .5, .25} of 24 / 32,64,96,160 / 64,48,32);
- depth: a stage may use its first ``n`` blocks;
- kernel 7, 5 or 3 per block: 5 and 3 come from the centre crop of the 7x7 depthwise kernel
  through a learned linear map (``Linear5x5`` on 25 taps, ``Linear3x3`` on 9 taps);
- input size: any multiple of 16 (the original samples 256..512 step 64).

Module names equal the original's, so its supernet checkpoints load unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .fastconv import depthwise_conv2d
from .litepose import LitePose, SepConv, build_layers, check_input, conv_bn_act
from .spec import SUPERNET_KERNELS, SUPERNET_MAX_EXPANSION, SUPERNET_SPEC, ArchSpec, expanded_width, resolve_spec

__all__ = ["SuperLitePose", "SuperInvertedBottleneck", "extract_subnet"]


def _bn(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """BatchNorm over the leading ``C`` channels of ``bn`` (running stats updated in place)."""
    c = x.shape[1]
    return F.batch_norm(
        x,
        bn.running_mean[:c],
        bn.running_var[:c],
        bn.weight[:c],
        bn.bias[:c],
        bn.training,
        bn.momentum if bn.momentum is not None else 0.1,
        bn.eps,
    )


class SuperInvertedBottleneck(nn.Module):
    """An inverted bottleneck at maximal size that runs any (cout, kernel, expansion) slice."""

    max_kernel = 7
    max_expansion = SUPERNET_MAX_EXPANSION

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        hidden = expanded_width(cin, self.max_expansion)
        k = self.max_kernel
        self.inv = conv_bn_act(cin, hidden, 1)
        self.depth_conv = conv_bn_act(hidden, hidden, k, stride, groups=hidden)
        self.point_conv = nn.Sequential(nn.Conv2d(hidden, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout))
        self.stride = stride
        self.Linear5x5 = nn.Linear(25, 25)
        self.Linear3x3 = nn.Linear(9, 9)
        self.max_in = cin
        self.max_out = cout

    def depthwise_weight(self, hidden: int, kernel: int) -> torch.Tensor:
        """The (hidden, 1, k, k) depthwise kernel of a subnet block (kernel transform for k < 7)."""
        w = self.depth_conv[0].weight[:hidden]
        if kernel == self.max_kernel:
            return w
        lo = self.max_kernel // 2 - kernel // 2
        w = w[:, :, lo : lo + kernel, lo : lo + kernel]
        lin = {5: self.Linear5x5, 3: self.Linear3x3}.get(kernel)
        if lin is None:
            raise ValueError(f"supernet kernels are 7, 5 or 3, got {kernel}")
        return lin(w.reshape(hidden, 1, kernel * kernel)).reshape(hidden, 1, kernel, kernel)

    def forward(self, x: torch.Tensor, cout: int, kernel: int = 7, expansion: float = 6) -> torch.Tensor:
        cin = x.shape[1]
        hidden = expanded_width(cin, expansion)
        out = F.conv2d(x, self.inv[0].weight[:hidden, :cin])
        out = F.relu6(_bn(out, self.inv[1]))
        w = self.depthwise_weight(hidden, kernel)
        out = depthwise_conv2d(out, w, self.stride, kernel // 2, fast=self.training)
        out = F.relu6(_bn(out, self.depth_conv[1]))
        out = _bn(F.conv2d(out, self.point_conv[0].weight[:cout, :hidden]), self.point_conv[1])
        if self.stride == 1 and cin == cout:
            out = out + x
        return out


def _sep_conv(x: torch.Tensor, m: SepConv, cout: int) -> torch.Tensor:
    c = x.shape[1]
    dw = m.conv[0]
    out = depthwise_conv2d(x, dw.weight[:c], 1, dw.padding[0], fast=m.training)
    out = F.relu(_bn(out, m.conv[1]))
    return F.conv2d(out, m.conv[3].weight[:cout, :c])


class SuperLitePose(nn.Module):
    """The supernet. ``forward(x, arch=None)`` runs the subnet ``arch`` (or the active one).

    ``arch`` is anything :func:`resolve_spec` accepts: a preset name, an architecture JSON
    path or dict, or an :class:`ArchSpec`. ``set_arch`` fixes the subnet for later calls;
    ``litepose.models.space.sample_arch(rng)`` draws a random one from the original's space.
    """

    def __init__(self, num_joints: int = 17, max_spec: ArchSpec = SUPERNET_SPEC) -> None:
        super().__init__()
        self.num_joints = num_joints
        self.max_spec = max_spec
        self.arch = "super"
        self.input_size = max_spec.input_size
        self.keypoints = None
        # Every block is built at the largest kernel and expansion; subnets slice them.
        build_layers(self, max_spec, num_joints, lambda cin, cout, s, k, t: SuperInvertedBottleneck(cin, cout, s))
        self.active: ArchSpec = max_spec

    # -- subnet selection -------------------------------------------------------------------------

    def check_arch(self, spec: ArchSpec) -> None:
        """Raise a clear error if ``spec`` is not a subnet of this supernet."""
        m = self.max_spec
        problems = []
        if spec.stem_channels > m.stem_channels:
            problems.append(f"stem {spec.stem_channels} > {m.stem_channels}")
        for i, (st, mst) in enumerate(zip(spec.stages, m.stages)):
            if st.channels > mst.channels:
                problems.append(f"stage {i} channels {st.channels} > {mst.channels}")
            if st.num_blocks > mst.num_blocks:
                problems.append(f"stage {i} blocks {st.num_blocks} > {mst.num_blocks}")
            if st.stride != mst.stride:
                problems.append(f"stage {i} stride {st.stride} != {mst.stride}")
            for t, k in st.blocks:
                if k not in SUPERNET_KERNELS:
                    problems.append(f"stage {i} kernel {k} not in {SUPERNET_KERNELS}")
                if t > SuperInvertedBottleneck.max_expansion:
                    problems.append(f"stage {i} expansion {t} > {SuperInvertedBottleneck.max_expansion}")
        for i, (f, mf) in enumerate(zip(spec.deconv, m.deconv)):
            if f > mf:
                problems.append(f"deconv {i} width {f} > {mf}")
        if problems:
            raise ValueError("architecture is not a subnet of the supernet: " + "; ".join(problems))

    def set_arch(self, arch: str | dict | ArchSpec) -> ArchSpec:
        """Make ``arch`` the subnet that ``forward`` runs by default; returns its spec."""
        spec = resolve_spec(arch)[1]
        self.check_arch(spec)
        self.active = spec
        return spec

    # -- forward ----------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, arch: str | dict | ArchSpec | None = None) -> list[torch.Tensor]:
        spec = self.active if arch is None else resolve_spec(arch)[1]
        if arch is not None:
            self.check_arch(spec)
        check_input(x)
        x = self.first[1](self.first[0](x))
        x = _bn(F.conv2d(x, self.first[2].weight[: spec.stem_channels]), self.first[3])
        feats = [x]
        for st, blocks in zip(spec.stages, self.stage):
            h = feats[-1]
            for (t, k), block in zip(st.blocks, blocks):
                h = block(h, st.channels, k, t)
            feats.append(h)
        head, raw = feats[-1], feats[-2]
        outputs = []
        for i, f in enumerate(spec.deconv):
            a = self.deconv_refined[i]
            b = self.deconv_raw[i]
            ya = F.conv_transpose2d(head, a.weight[: head.shape[1], :f], None, 2, 1)
            yb = F.conv_transpose2d(raw, b.weight[: raw.shape[1], :f], None, 2, 1)
            head = F.relu(_bn(ya + yb, self.deconv_bnrelu[i][0]))
            raw = feats[-i - 3]
            if i > 0:
                cout = self.final_refined[i - 1].conv[3].out_channels
                outputs.append(
                    _sep_conv(head, self.final_refined[i - 1], cout) + _sep_conv(raw, self.final_raw[i - 1], cout)
                )
        return outputs

    def extra_repr(self) -> str:
        return f"num_joints={self.num_joints}, active={self.active}"


@torch.no_grad()
def extract_subnet(supernet: SuperLitePose, arch: str | dict | ArchSpec) -> LitePose:
    """A standalone :class:`LitePose` with the supernet's weights for ``arch``.

    Every tensor is the leading slice of the supernet's; depthwise kernels of size 5 / 3 are
    computed through the kernel transform; BatchNorm statistics are copied (the trainer's
    ``transfer`` recalibrates them). The result gives the supernet's outputs for ``arch``.
    """
    spec = resolve_spec(arch)[1]
    supernet.check_arch(spec)
    net = LitePose(spec, supernet.num_joints)
    net.keypoints = supernet.keypoints
    src = dict(supernet.state_dict())
    out = {}
    for key, t in net.state_dict().items():
        parts = key.split(".")
        if parts[0] == "stage" and parts[3] == "depth_conv" and parts[4] == "0":
            block = supernet.stage[int(parts[1])][int(parts[2])]
            out[key] = block.depthwise_weight(t.shape[0], t.shape[-1]).detach().clone()
            continue
        s = src[key]
        if s.dim() == 0:
            out[key] = s.clone()
        else:
            out[key] = s[tuple(slice(0, n) for n in t.shape)].clone()
    net.load_state_dict(out)
    return net
