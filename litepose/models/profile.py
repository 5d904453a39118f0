"""Params and MACs of a LitePose architecture, computed from the spec (no forward pass).

Two conventions:

- ``macs``: true multiply-adds of every convolution and transposed convolution (a transposed
  conv costs ``H_in * W_in * k * k * Cin * Cout / groups``);
- ``macs_paper``: the count of the ptflops 0.6.x release the paper used: convolutions at their
  true cost (+1 per output element for a bias), each transposed convolution over its *output*
  size (4x its true cost at stride 2), +2 per BatchNorm output element and +1 per ReLU / ReLU6
  output element. Use it to compare with the paper's table.

Pure arithmetic: fast enough to call thousands of times (e.g. to compare many subnets).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .spec import ArchSpec, check_input_size, expanded_width, resolve_spec

__all__ = ["Profile", "profile_model"]


@dataclass(frozen=True)
class Profile:
    name: str
    input_size: tuple[int, int]
    num_joints: int
    params: int
    macs: int
    macs_paper: int
    deconv_macs: int

    def as_dict(self) -> dict:
        return asdict(self)


class _Counter:
    def __init__(self) -> None:
        self.params = 0
        self.macs = 0
        self.paper = 0
        self.deconv_total = 0

    def conv(self, cin: int, cout: int, k: int, groups: int, out_hw: int, bn: bool, act: bool) -> None:
        w = cout * (cin // groups) * k * k
        self.params += w
        self.macs += w * out_hw
        self.paper += w * out_hw
        self._post(cout, out_hw, bn, act)

    def deconv_pair_output(self, cout: int, out_hw: int) -> None:
        self._post(cout, out_hw, True, True)

    def deconv(self, cin: int, cout: int, k: int, in_hw: int, out_hw: int) -> None:
        w = cin * cout * k * k
        self.params += w
        self.macs += w * in_hw
        self.deconv_total += w * in_hw
        self.paper += w * out_hw

    def _post(self, c: int, hw: int, bn: bool, act: bool) -> None:
        if bn:
            self.params += 2 * c
            self.paper += 2 * c * hw
        if act:
            self.paper += c * hw


def profile_model(
    arch: str | dict | ArchSpec,
    num_joints: int = 17,
    input_size: int | tuple[int, int] | None = None,
) -> Profile:
    """Params and MACs (both conventions) of ``arch`` at ``input_size`` (default: the spec's)."""
    name, spec = resolve_spec(arch)
    if input_size is None:
        input_size = spec.input_size
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    h, w = check_input_size(h), check_input_size(w)
    if isinstance(num_joints, bool) or not isinstance(num_joints, int) or num_joints < 1:
        raise ValueError(f"the number of joints must be a positive integer, got {num_joints!r}")
    c = _Counter()

    def hw(stride: int) -> int:
        return (h // stride) * (w // stride)

    c.conv(3, 32, 3, 1, hw(2), True, True)
    c.conv(32, 32, 3, 32, hw(2), True, True)
    c.conv(32, spec.stem_channels, 1, 1, hw(2), True, False)
    channels = [spec.stem_channels]
    res = 2
    cin = spec.stem_channels
    for st in spec.stages:
        for i, (t, k) in enumerate(st.blocks):
            s = st.stride if i == 0 else 1
            hid = expanded_width(cin, t)
            c.conv(cin, hid, 1, 1, hw(res), True, True)
            c.conv(hid, hid, k, hid, hw(res * s), True, True)
            c.conv(hid, st.channels, 1, 1, hw(res * s), True, False)
            res *= s
            cin = st.channels
        channels.append(st.channels)
    prev = channels[-1]
    for i, f in enumerate(spec.deconv):
        c.deconv(prev, f, 4, hw(res), hw(res // 2))
        c.deconv(channels[-i - 2], f, 4, hw(res), hw(res // 2))
        res //= 2
        c.deconv_pair_output(f, hw(res))
        prev = f
        if i > 0:
            out = 2 * num_joints if i == 1 else num_joints
            for cin_head in (f, channels[-i - 3]):
                c.conv(cin_head, cin_head, 5, cin_head, hw(res), True, True)
                c.conv(cin_head, out, 1, 1, hw(res), False, False)
    return Profile(name, (h, w), num_joints, c.params, c.macs, c.paper, c.deconv_total)
