"""NCNN backend: a ``.ncnn.param`` + ``.ncnn.bin`` pair of ``litepose export --format ncnn``, on the CPU.

NCNN's text graph has no place for metadata, so the export writes it beside the graph as a sidecar
JSON (:func:`sidecar_path`: ``<name>.ncnn.param.json``), in the same ``litepose.<key>`` strings the
other formats embed (:mod:`litepose.runtime.metadata`). Any input height and width runs (NCNN
shapes its blobs per call); NCNN takes one sample at a time, so a batch (and the flip test's
mirrored copy) runs sample by sample. Computation is kept in fp32 (NCNN's fp16 / bf16 storage and
arithmetic, on by default on ARM CPUs that have them, are switched off) so that the outputs are
those of the PyTorch network. No torch needed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import one_line
from .base import ArrayBackend, missing
from .metadata import from_strings

__all__ = ["NcnnBackend", "sidecar_path", "weights_path", "read_sidecar"]


def sidecar_path(param: str | Path) -> Path:
    """The metadata file of an exported NCNN graph (or ExecuTorch program): ``<file name>.json``."""
    param = Path(param)
    return param.with_name(param.name + ".json")


def weights_path(param: str | Path) -> Path:
    """The ``.bin`` weights beside an NCNN ``.param`` graph (``a.ncnn.param`` -> ``a.ncnn.bin``)."""
    return Path(param).with_suffix(".bin")


def read_sidecar(path: str | Path) -> dict[str, str]:
    """The metadata strings of ``path``'s sidecar JSON (a clear error when absent or unreadable)."""
    side = sidecar_path(path)
    try:
        props = json.loads(side.read_text())
    except FileNotFoundError:
        raise ValueError(
            f"{path}: no litepose metadata beside it ({side.name} is missing): export it with "
            "'litepose export --format ncnn', which writes it"
        ) from None
    except (OSError, ValueError) as e:
        raise ValueError(f"{side}: unreadable litepose metadata ({one_line(str(e), 200)})") from None
    if not isinstance(props, dict) or not all(isinstance(v, str) for v in props.values()):
        raise ValueError(f"{side}: litepose metadata must be a JSON object of strings")
    return props


def _input_size(param: str) -> int | None:
    """The one size (H = W) an NCNN graph's Input layer fixes (``0=w 1=h``, ``--static``), else None."""
    for line in param.splitlines():
        parts = line.split()
        if parts and parts[0] == "Input":
            values = dict(p.split("=", 1) for p in parts[4:] if "=" in p)
            w, h = values.get("0"), values.get("1")
            return int(h) if w is not None and w == h and int(h) > 0 else None
    return None


class NcnnBackend(ArrayBackend):
    """An NCNN network on the CPU, ``threads`` threads (default: NCNN's own, the core count)."""

    name = "ncnn"

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        try:
            import ncnn
        except ImportError:
            raise missing("ncnn", "ncnn", f"{path}: running an NCNN graph") from None
        self.path = Path(path)
        bin_path = weights_path(self.path)
        if not bin_path.is_file():
            raise ValueError(f"{path}: its weights {bin_path.name} are not beside it")
        info = from_strings(read_sidecar(self.path), str(path))
        super().__init__(info)
        net = ncnn.Net()
        opt = net.opt
        opt.use_vulkan_compute = False
        for flag in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_storage"):
            setattr(opt, flag, False)  # fp32 throughout: the PyTorch network's outputs (see the module doc)
        if threads:
            opt.num_threads = int(threads)
        if net.load_param(str(self.path)) != 0 or net.load_model(str(bin_path)) != 0:
            raise ValueError(f"{path}: NCNN cannot load it (a graph with layers this ncnn lacks, or not NCNN)")
        inputs, outputs = list(net.input_names()), list(net.output_names())
        if len(inputs) != 1 or len(outputs) != 2:
            raise ValueError(f"{path}: expected one input and two outputs, found {inputs} and {outputs}")
        self.net, self._input, self._outputs = net, inputs[0], outputs
        self._ncnn = ncnn
        self.static_size = _input_size(self.path.read_text(errors="replace"))

    def _one(self, sample: np.ndarray) -> list[np.ndarray]:
        """The two maps of one (3, H, W) sample, in litepose's order (1/4 resolution first)."""
        # ncnn.Mat wraps the array's memory without copying: ``sample`` stays referenced until the end
        sample = np.ascontiguousarray(sample, dtype=np.float32)
        ex = self.net.create_extractor()
        ex.input(self._input, self._ncnn.Mat(sample))
        maps = []
        for name in self._outputs:
            rc, mat = ex.extract(name)
            if rc != 0:
                raise RuntimeError(f"{self.path}: NCNN failed to compute {name} (code {rc})")
            maps.append(np.array(mat, dtype=np.float32))
        k = self.info.num_joints
        if maps[0].shape[0] != 2 * k:  # find the 2K-channel map by its channels, not by the output order
            maps.reverse()
        if maps[0].shape[0] != 2 * k or maps[1].shape[0] != k:
            raise ValueError(f"{self.path}: outputs of {[m.shape for m in maps]} channels, not {2 * k} and {k}")
        return maps

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        per_sample = [self._one(s) for s in x]
        return [np.stack(maps) for maps in zip(*per_sample)]
