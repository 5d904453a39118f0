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
from .topology import Block, Fusion, Stem, walk

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

    def area(size: tuple[int, int]) -> int:
        return size[0] * size[1]

    for layer in walk(spec, num_joints, (h, w)):
        if isinstance(layer, Stem):
            out = area(layer.size_out)
            c.conv(3, 32, 3, 1, out, True, True)
            c.conv(32, 32, 3, 32, out, True, True)
            c.conv(32, layer.cout, 1, 1, out, True, False)
        elif isinstance(layer, Block):
            hid = expanded_width(layer.cin, layer.expansion)
            c.conv(layer.cin, hid, 1, 1, area(layer.size_in), True, True)
            c.conv(hid, hid, layer.kernel, hid, area(layer.size_out), True, True)
            c.conv(hid, layer.cout, 1, 1, area(layer.size_out), True, False)
        elif isinstance(layer, Fusion):
            c.deconv(layer.cin_head, layer.cout, 4, area(layer.size_in), area(layer.size_out))
            c.deconv(layer.cin_raw, layer.cout, 4, area(layer.size_in), area(layer.size_out))
            c.deconv_pair_output(layer.cout, area(layer.size_out))
        else:
            for cin in (layer.cin_head, layer.cin_raw):
                c.conv(cin, cin, 5, cin, area(layer.size), True, True)
                c.conv(cin, layer.cout, 1, 1, area(layer.size), False, False)
    return Profile(name, (h, w), num_joints, c.params, c.macs, c.paper, c.deconv_total)
