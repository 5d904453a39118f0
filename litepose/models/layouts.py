"""State_dict layouts of LitePose checkpoints, renamed to the original's keys.

litepose's modules carry the original's names (``first.*``, ``stage.S.B.{inv,depth_conv,
point_conv}.*``, ``deconv_*``, ``final_*``), so the original's releases load as they are. The
mmpose port (open-mmlab/mmpose PR #1486, never merged) saves the same network as an mmcv
detector: its keys sit under ``backbone.`` (stem and stages) and ``keypoint_head.`` (deconv and
final layers), and the port used two module layouts over its history:

- ``mmpose-early`` (up to commit cec8cccfe, 2022-07-14): the original's module names under
  those prefixes;
- ``mmpose-convmodule`` (commit 158aefc69, 2022-07-21, to the PR head 2bd795f1c): every
  conv + BatchNorm pair is an mmcv ``ConvModule`` with children ``conv`` and ``bn``:

  ========================================  ================================================
  mmpose ConvModule layout                   original
  ========================================  ================================================
  ``first.{0,1}.{conv,bn}``                  ``first.{0,1}.{0,1}``
  ``first.2.{conv,bn}``                      ``first.{2,3}``
  ``stage.S.B.conv.{0,1,2}.{conv,bn}``       ``stage.S.B.{inv,depth_conv,point_conv}.{0,1}``
  ``final_*.i.conv.0.{conv,bn}``             ``final_*.i.conv.{0,1}``
  ``final_*.i.conv.1.conv``                  ``final_*.i.conv.3``
  ``deconv_refined/raw.i``,                  unchanged
  ``deconv_bnrelu.i.0``
  ========================================  ================================================

The layout is detected from the keys; nothing else differs (same tensors, same shapes).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import torch

__all__ = ["LAYOUTS", "detect_layout", "to_original"]

LAYOUTS = ("original", "mmpose-early", "mmpose-convmodule")
MMPOSE_PREFIXES = ("backbone.", "keypoint_head.")

_BLOCK_PARTS = ("inv", "depth_conv", "point_conv")  # ConvModule index 0, 1, 2 of a block
_PAIR = {"conv": "0", "bn": "1"}  # a ConvModule's children -> the original Sequential's indices

# (pattern on a ConvModule-layout key, function of the match giving the original key)
_CONVMODULE_RULES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"^first\.([01])\.(conv|bn)\.(.+)$"), lambda m: f"first.{m[1]}.{_PAIR[m[2]]}.{m[3]}"),
    (re.compile(r"^first\.2\.(conv|bn)\.(.+)$"), lambda m: f"first.{2 + int(_PAIR[m[1]])}.{m[2]}"),
    (
        re.compile(r"^stage\.(\d+)\.(\d+)\.conv\.([012])\.(conv|bn)\.(.+)$"),
        lambda m: f"stage.{m[1]}.{m[2]}.{_BLOCK_PARTS[int(m[3])]}.{_PAIR[m[4]]}.{m[5]}",
    ),
    (
        re.compile(r"^(final_refined|final_raw)\.(\d+)\.conv\.0\.(conv|bn)\.(.+)$"),
        lambda m: f"{m[1]}.{m[2]}.conv.{_PAIR[m[3]]}.{m[4]}",
    ),
    (re.compile(r"^(final_refined|final_raw)\.(\d+)\.conv\.1\.conv\.(.+)$"), lambda m: f"{m[1]}.{m[2]}.conv.3.{m[3]}"),
)
_CONVMODULE_MARK = re.compile(r"^(first\.\d+|stage\.\d+\.\d+\.conv\.\d+|final_\w+\.\d+\.conv\.\d+)\.(conv|bn)\.")


def detect_layout(sd: dict[str, torch.Tensor]) -> str:
    """One of :data:`LAYOUTS`, from the keys of a state_dict (``module.`` prefixes already gone)."""
    if not any(k.startswith(MMPOSE_PREFIXES) for k in sd):
        return "original"
    stripped = (_strip_prefix(k) for k in sd)
    return "mmpose-convmodule" if any(_CONVMODULE_MARK.match(k) for k in stripped) else "mmpose-early"


def _strip_prefix(key: str) -> str:
    for p in MMPOSE_PREFIXES:
        if key.startswith(p):
            return key[len(p) :]
    return key


def _from_convmodule(key: str) -> str:
    for pattern, rename in _CONVMODULE_RULES:
        m = pattern.match(key)
        if m:
            return rename(m)
    return key


def to_original(sd: dict[str, torch.Tensor], path: Path | str = "<state_dict>") -> tuple[dict[str, torch.Tensor], str]:
    """Rename an mmpose-port state_dict to the original's keys; returns ``(state_dict, layout)``.

    Keys outside the known modules are kept as they are (a strict load then names them).
    Raises ValueError for a ConvModule block without its expansion conv (expand ratio 1): the
    original network always has one.
    """
    layout = detect_layout(sd)
    if layout == "original":
        return sd, layout
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        key = _strip_prefix(k)
        if layout == "mmpose-convmodule":
            key = _from_convmodule(key)
        out[key] = v
    if layout == "mmpose-convmodule":
        for k in out:
            m = re.match(r"^stage\.(\d+)\.(\d+)\.depth_conv\.0\.weight$", k)
            if m and f"stage.{m[1]}.{m[2]}.point_conv.0.weight" not in out:
                raise ValueError(
                    f"{path}: block stage.{m[1]}.{m[2]} has no expansion conv (expand ratio 1); "
                    "the LitePose network always has one"
                )
    return out, layout
