"""What a candidate costs: budgets with units, MACs / params (analytic) and measured latency.

- :func:`parse_budget`: ``0.9GMACs``, ``900MMACs``, ``2.5Mparams``, ``20ms`` -> a :class:`Budget`
  whose unit picks the cost (a bare number is refused: the original read ptflops' "936.01 MMac"
  without its unit, as 936 G);
- ``macs`` / ``paper-macs`` / ``params``: :func:`litepose.models.profile_model`, pure arithmetic;
- ``latency``: a :class:`LatencyTable` of per-layer times measured once per distinct layer shape
  on this machine, for one backend and thread count, cached on disk under ``$LITEPOSE_HOME/latency``
  and summed per candidate. :func:`time_module` is the one place a backend runs a module.
"""

from __future__ import annotations

import json
import platform
import re
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.jsonio import read_json
from ..files import atomic_write
from ..home import home_dir
from ..models.profile import profile_model
from ..models.spec import PRESETS, ArchSpec
from ..models.topology import Block, Fusion, Stem, walk

__all__ = [
    "COSTS",
    "BACKENDS",
    "Budget",
    "parse_budget",
    "format_cost",
    "LatencyTable",
    "time_module",
    "network_latency",
    "cost_of",
]

#: The cost models, by name, and the unit family of each.
COSTS = {"macs": "macs", "paper-macs": "macs", "params": "params", "latency": "latency"}

#: Backends :func:`time_module` can run (onnxruntime / openvino plug in here when they land).
BACKENDS = ("torch",)

_UNITS = {
    # unit (lower case) -> (family, factor to the base unit: MACs, params, milliseconds)
    "gmacs": ("macs", 1e9), "gmac": ("macs", 1e9),
    "mmacs": ("macs", 1e6), "mmac": ("macs", 1e6),
    "kmacs": ("macs", 1e3), "kmac": ("macs", 1e3),
    "macs": ("macs", 1.0), "mac": ("macs", 1.0),
    "mparams": ("params", 1e6), "kparams": ("params", 1e3), "params": ("params", 1.0),
    "s": ("latency", 1e3), "ms": ("latency", 1.0), "us": ("latency", 1e-3),
}  # fmt: skip
_BUDGET_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*$")
_BASE_UNIT = {"macs": "MACs", "params": "params", "latency": "ms"}


@dataclass(frozen=True)
class Budget:
    """A cost limit: ``value`` in the base unit of ``cost``'s family (MACs, params or ms)."""

    value: float
    cost: str  # a key of COSTS
    text: str  # as the user wrote it

    def allows(self, cost: float) -> bool:
        return cost <= self.value


def parse_budget(text: str, cost: str | None = None) -> Budget:
    """``"0.9GMACs"`` -> Budget(9e8, "macs"). ``cost`` overrides the cost the unit picks
    within the unit's family (``paper-macs`` for a MACs budget); a unit of another family is refused."""
    m = _BUDGET_RE.match(str(text))
    examples = "write it with its unit, e.g. 0.9GMACs, 900MMACs, 2.5Mparams or 20ms"
    if not m:
        raise ValueError(f"budget {text!r} is not a number with a unit: {examples}")
    number, unit = float(m.group(1)), m.group(2)
    if not unit:
        raise ValueError(f"budget {text!r} has no unit: {examples}")
    if unit.lower() in ("gflops", "mflops", "flops"):
        raise ValueError(f"budget {text!r}: FLOPs are ambiguous (1 or 2 per multiply-add); give MACs: {examples}")
    if unit.lower() not in _UNITS:
        raise ValueError(f"budget {text!r}: unknown unit {unit!r} (GMACs, MMACs, KMACs, MACs, Mparams, Kparams, "
                         "params, s, ms, us)")  # fmt: skip
    family, factor = _UNITS[unit.lower()]
    if number <= 0:
        raise ValueError(f"budget {text!r} must be positive")
    if cost is None:
        cost = family
    if cost not in COSTS:
        raise ValueError(f"cost {cost!r}: choose one of {', '.join(COSTS)}")
    if COSTS[cost] != family:
        raise ValueError(f"budget {text!r} is in {_BASE_UNIT[family]}, but the cost {cost} is counted in "
                         f"{_BASE_UNIT[COSTS[cost]]}: give a budget in that unit")  # fmt: skip
    return Budget(number * factor, cost, str(text).strip())


def format_cost(value: float, cost: str) -> str:
    """A cost in the unit people read: ``0.874 GMACs``, ``1.62 Mparams``, ``18.4 ms``."""
    family = COSTS[cost]
    if family == "macs":
        return f"{value / 1e9:.3f} G{'MACs' if cost == 'macs' else 'MACs (paper)'}"
    if family == "params":
        return f"{value / 1e6:.3f} Mparams"
    return f"{value:.2f} ms"


# -- timing (the one backend switch) ---------------------------------------------------------------


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(
            f"backend {backend!r} is not available for latency yet (available: {', '.join(BACKENDS)}); "
            "per-layer latency tables of the onnxruntime / openvino backends are not built yet"
        )
    return backend


def time_module(
    module: nn.Module,
    inputs: Sequence[torch.Tensor],
    backend: str = "torch",
    threads: int | None = None,
    *,
    min_runs: int = 5,
    min_seconds: float = 0.15,
    warmup: int = 2,
) -> float:
    """Median wall time in milliseconds of ``module(*inputs)`` on ``backend`` with ``threads``.

    ``torch``: eval mode, channels-last, inference mode (fold BatchNorm before calling). Runs at
    least ``min_runs`` times and ``min_seconds`` in all, after ``warmup`` runs.
    """
    check_backend(backend)
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    # Denormal floats (deep random-weight nets shrink activations into them) cost 10-100x per op on
    # x86: flushed to zero here, as trained networks in deployment effectively never meet them.
    torch.set_flush_denormal(True)
    try:
        module = module.eval().to(memory_format=torch.channels_last)
        xs = [x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x for x in inputs]
        times = []
        with torch.inference_mode():
            for _ in range(warmup):
                module(*xs)
            start = time.perf_counter()
            while len(times) < min_runs or time.perf_counter() - start < min_seconds:
                t0 = time.perf_counter()
                module(*xs)
                times.append(time.perf_counter() - t0)
                if len(times) >= 200:
                    break
        return 1e3 * statistics.median(times)
    finally:
        torch.set_num_threads(old)
        torch.set_flush_denormal(False)


def network_latency(
    spec: ArchSpec,
    num_joints: int,
    backend: str = "torch",
    threads: int | None = None,
    supernet: Any = None,
    passes: int = 3,
) -> float:
    """The whole network's latency in ms, BatchNorm folded (what the table predicts): with the weights
    of ``supernet`` when given (realistic activations), else random ones; the fastest median of
    ``passes`` timings, as the table's entries."""
    from ..models import extract_subnet, fold_batchnorm
    from ..models.litepose import LitePose

    net = fold_batchnorm(extract_subnet(supernet, spec) if supernet is not None else LitePose(spec, num_joints))
    x = torch.randn(1, 3, spec.input_size, spec.input_size)
    return min(time_module(net, (x,), backend, threads) for _ in range(max(1, passes)))


# -- the per-layer table ---------------------------------------------------------------------------

#: Networks timed whole to fit the table's scale (whole network / sum of its layers).
CALIBRATION_NETWORKS = 6

# A layer: ("stem", size, stem) | ("block", cin, cout, t, k, stride, h) | ("deconv", cin, cout, h)
#          | ("addrelu", c, h) | ("sep", cin, cout, h) | ("add", c, h); h = the input side.
Layer = tuple


def layers_of(spec: ArchSpec, num_joints: int) -> list[Layer]:
    """The layers of ``spec`` in forward order (the units the table times), from the model's
    topology (:func:`litepose.models.topology.walk`)."""
    out: list[Layer] = []
    for layer in walk(spec, num_joints):
        if isinstance(layer, Stem):
            out.append(("stem", layer.size_in[0], layer.cout))
        elif isinstance(layer, Block):
            b = layer
            out.append(("block", b.cin, b.cout, b.expansion, b.kernel, b.stride, b.size_in[0]))
        elif isinstance(layer, Fusion):
            h = layer.size_in[0]
            out += [("deconv", layer.cin_head, layer.cout, h), ("deconv", layer.cin_raw, layer.cout, h)]
            out.append(("addrelu", layer.cout, layer.size_out[0]))
        else:
            h = layer.size[0]
            out += [("sep", layer.cin_head, layer.cout, h), ("sep", layer.cin_raw, layer.cout, h)]
            out.append(("add", layer.cout, h))
    return out


def _fold_into_plain(seq: nn.Sequential) -> nn.Sequential:
    """conv (no bias) + BN [+ act] as the folded network has it: conv with bias [+ act]."""
    from ..models.fold import _fold_seq

    _fold_seq(seq)
    return seq


class _Add(nn.Module):
    def __init__(self, relu: bool) -> None:
        super().__init__()
        self.relu = relu

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        y = a + b
        return torch.relu_(y) if self.relu else y


def layer_module(layer: Layer) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """A module computing ``layer`` as the BatchNorm-folded network does, and an input for it."""
    from ..models.litepose import InvertedBottleneck, SepConv, _deconv, conv_bn_act

    kind = layer[0]
    with torch.no_grad():
        if kind == "stem":
            _, s, stem = layer
            seq = nn.Sequential(
                _fold_into_plain(conv_bn_act(3, 32, 3, 2)),
                _fold_into_plain(conv_bn_act(32, 32, 3, 1, groups=32)),
                nn.Conv2d(32, stem, 1, bias=True),
            )
            return seq, (torch.randn(1, 3, s, s),)
        if kind == "block":
            _, cin, cout, t, k, stride, h = layer
            b = InvertedBottleneck(cin, cout, stride, k, t)
            for part in (b.inv, b.depth_conv, b.point_conv):
                _fold_into_plain(part)
            return b, (torch.randn(1, cin, h, h),)
        if kind == "deconv":
            _, cin, cout, h = layer
            d = _deconv(cin, cout)
            return d, (torch.randn(1, cin, h, h),)
        if kind in ("addrelu", "add"):
            _, c, h = layer
            return _Add(kind == "addrelu"), (torch.randn(1, c, h, h), torch.randn(1, c, h, h))
        if kind == "sep":
            _, cin, cout, h = layer
            sep = SepConv(cin, cout)
            _fold_into_plain(sep.conv)
            return sep, (torch.randn(1, cin, h, h),)
    raise ValueError(f"unknown layer kind {kind!r}")


def _key(layer: Layer) -> str:
    return "/".join(str(v) for v in layer)


#: CPU feature flags that change which kernels torch / oneDNN run (x86 ``flags``, Arm ``Features``):
#: two CPUs that differ in one of these run a layer through different code and time it differently.
SIMD_FLAGS = frozenset(
    "sse4_1 sse4_2 avx avx2 fma f16c avx512f avx512dq avx512cd avx512bw avx512vl avx512ifma avx512vbmi "
    "avx512_vbmi2 avx512_vnni avx512_bf16 avx512_fp16 avx_vnni amx_tile amx_int8 amx_bf16 "
    "asimd asimdhp asimddp asimdfhm sve sve2 i8mm bf16 sme".split()
)
_CPUINFO_KEYS = {  # /proc/cpuinfo field -> identity key (x86 names, then Arm's)
    "vendor_id": "vendor", "cpu implementer": "vendor",
    "cpu family": "family", "cpu architecture": "family",
    "model": "model", "cpu part": "model",
    "stepping": "stepping", "cpu variant": "variant", "cpu revision": "revision",
    "model name": "name", "flags": "flags", "features": "flags",
}  # fmt: skip


def cpu_identity(cpuinfo: str | None = None) -> dict[str, Any]:
    """What identifies this CPU for timing purposes: vendor, family, model, stepping (Arm: implementer,
    architecture, part, variant, revision), the SIMD flags torch's kernels depend on, the core count,
    and a readable ``name`` (the marketing name, which alone is ambiguous: a VM's "Intel Xeon
    Processor" or "AMD EPYC" covers several generations). ``cpuinfo``: the text of /proc/cpuinfo
    (default: read it; absent off Linux, where platform's processor and machine stand in)."""
    import os

    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    ident: dict[str, Any] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if "model" in ident or "flags" in ident:
                break  # the first processor's block describes the model (all cores of one CPU agree)
            continue
        key, _, value = line.partition(":")
        field = _CPUINFO_KEYS.get(key.strip().lower())
        if field and field not in ident:
            ident[field] = value.strip()
    flags = set(ident.pop("flags", "").split())
    name = ident.pop("name", "") or platform.processor() or platform.machine()
    return {
        "name": name,
        **ident,
        "machine": platform.machine(),
        "simd": sorted(flags & SIMD_FLAGS),
        "cores": os.cpu_count(),
    }


def cpu_name() -> str:
    """This machine's CPU as people read it: the marketing name and core count (not a cache key:
    :func:`cpu_identity` is)."""
    ident = cpu_identity()
    return f"{ident['name']} x{ident['cores']}"


def _describe(machine: dict[str, Any]) -> str:
    """One line naming a :meth:`LatencyTable.identity` for an error message."""
    parts = [str(machine.get("name", "?"))]
    cpu = machine.get("cpu_model", {})
    if isinstance(cpu, dict):
        parts += [f"{k} {cpu[k]}" for k in ("vendor", "family", "model", "stepping", "cores") if k in cpu]
        parts.append(f"{len(cpu.get('simd', []))} SIMD flags")
    parts += [f"{k} {machine[k]}" for k in ("torch", "cpu_capability") if k in machine]
    return ", ".join(parts)


class LatencyTable:
    """Per-layer latencies (ms) for one backend / thread count / CPU, summed per candidate.

    ``measure(layer) -> ms`` times a missing layer (default: :func:`time_module` of
    :func:`layer_module`); tests inject their own, or ``entries``. With ``path`` the table is
    read from and written back to that JSON file (default: :meth:`default_path`).
    """

    def __init__(
        self,
        backend: str = "torch",
        threads: int | None = None,
        *,
        path: str | Path | None = None,
        entries: dict[str, float] | None = None,
        measure: Callable[[Layer], float] | None = None,
    ) -> None:
        self.backend = check_backend(backend) if measure is None else backend
        self.threads = int(threads if threads is not None else torch.get_num_threads())
        self.cpu = cpu_name()
        self.machine = self.identity()
        self.path = Path(path) if path is not None else (self.default_path() if entries is None else None)
        self.entries: dict[str, float] = dict(entries or {})
        self._measure = measure
        self.measured = 0  # layers timed by this object
        # Whole network / sum of its layers, fitted by :meth:`calibrate` (1.0 until then): a layer
        # timed alone, its input and weights hot in cache, runs faster than inside the network.
        self.scale = 1.0
        self.scale_networks = 0  # how many networks the scale was fitted on
        if self.path is not None and self.path.is_file():
            self._load()

    @staticmethod
    def identity() -> dict[str, Any]:
        """What a table's times depend on besides backend and threads: the CPU model exactly
        (:func:`cpu_identity`), the runtime's version and the kernels it picked for this CPU."""
        cpu = cpu_identity()
        return {
            "name": cpu_name(),
            "cpu_model": {k: v for k, v in cpu.items() if k != "name"},
            "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        }

    def default_path(self) -> Path:
        """``$LITEPOSE_HOME/latency/<backend>-<threads>t-torch<version>-<cpu name>-<identity hash>.json``:
        the readable name for people, the hash of :meth:`identity` so that another CPU generation
        behind the same marketing name gets its own table."""
        import hashlib

        digest = hashlib.sha256(json.dumps(self.machine, sort_keys=True).encode()).hexdigest()[:12]
        slug = re.sub(r"[^A-Za-z0-9]+", "-", self.cpu).strip("-").lower()[:80]
        return home_dir() / "latency" / f"{self.backend}-{self.threads}t-torch{torch.__version__}-{slug}-{digest}.json"

    def _load(self) -> None:
        try:
            data = read_json(self.path, "latency table")  # type: ignore[arg-type]
        except OSError as e:
            raise ValueError(f"{self.path}: cannot read the latency table: {e}") from None
        if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
            raise ValueError(f"{self.path}: not a latency table (no 'entries')")
        for k in ("backend", "threads"):
            if data.get(k) != getattr(self, k):
                raise ValueError(f"{self.path}: a table for {k} {data.get(k)!r}, not {getattr(self, k)!r}")
        theirs = data.get("machine")
        if theirs != self.machine:
            where = (
                f"measured on another CPU or runtime ({_describe(theirs)})"
                if isinstance(theirs, dict)
                else "written without the CPU identity its times depend on (an older litepose)"
            )
            raise ValueError(
                f"{self.path}: a latency table {where}; this machine is {_describe(self.machine)}: "
                "its times would not be this machine's. Build a table here (another path, or remove this one)"
            )
        self.entries.update({str(k): float(v) for k, v in data["entries"].items()})
        self.scale = float(data.get("scale", 1.0))
        self.scale_networks = int(data.get("scale_networks", 0))

    def save(self) -> Path | None:
        if self.path is None:
            return None
        doc = {"backend": self.backend, "threads": self.threads, "cpu": self.cpu, "torch": torch.__version__,
               "machine": self.machine, "scale": self.scale, "scale_networks": self.scale_networks,
               "entries": dict(sorted(self.entries.items()))}  # fmt: skip
        return atomic_write(self.path, lambda tmp: tmp.write_text(json.dumps(doc, indent=0)))

    def _time(self, layer: Layer) -> float:
        if self._measure is not None:
            return float(self._measure(layer))
        module, inputs = layer_module(layer)
        return time_module(module, inputs, self.backend, self.threads)

    def layer_ms(self, layer: Layer) -> float:
        k = _key(layer)
        if k not in self.entries:
            self.entries[k] = self._time(layer)
            self.measured += 1
        return self.entries[k]

    def missing(self, layers: Iterable[Layer]) -> list[Layer]:
        seen, out = set(), []
        for layer in layers:
            k = _key(layer)
            if k not in self.entries and k not in seen:
                seen.add(k)
                out.append(layer)
        return out

    def fill(self, layers: Iterable[Layer], progress: bool = True, passes: int = 3) -> int:
        """Time every missing layer of ``layers`` (each distinct shape once per pass); saves; returns how many.

        ``passes`` sweeps over all the layers, keeping each layer's fastest median: a burst of load
        from elsewhere on the machine then spoils one sweep of a layer, not its entry.
        """
        from tqdm import tqdm

        todo = self.missing(layers)
        best: dict[str, float] = {}
        for p in range(max(1, passes) if todo else 0):
            desc = "latency table" + (f" (pass {p + 1}/{passes})" if passes > 1 else "")
            for layer in tqdm(todo, desc=desc, unit="layer", disable=not progress):
                k = _key(layer)
                best[k] = min(best.get(k, float("inf")), self._time(layer))
            self.entries.update(best)
            self.measured += len(todo) if p == 0 else 0
            if todo:
                self.save()
        return len(todo)

    def layer_sum(self, spec: ArchSpec, num_joints: int) -> float:
        """The sum of ``spec``'s layer latencies in ms (measuring any missing), unscaled."""
        before = self.measured
        total = sum(self.layer_ms(layer) for layer in layers_of(spec, num_joints))
        if self.measured != before:
            self.save()
        return total

    def latency(self, spec: ArchSpec, num_joints: int) -> float:
        """The predicted latency of ``spec`` in ms: :attr:`scale` x the sum of its layers'."""
        return self.scale * self.layer_sum(spec, num_joints)

    def calibrate(self, specs: Sequence[ArchSpec], num_joints: int, measure: Callable[[ArchSpec], float]) -> float:
        """Fit :attr:`scale` as the median of whole-network time / layer sum over ``specs``
        (``measure(spec)`` times one network whole); saves; returns the scale."""
        ratios = [measure(spec) / self.layer_sum(spec, num_joints) for spec in specs]
        if not ratios:
            raise ValueError("latency table calibration needs at least one network")
        self.scale, self.scale_networks = float(statistics.median(ratios)), len(ratios)
        self.save()
        return self.scale


def space_layers(space: Any, num_joints: int) -> list[Layer]:
    """Every distinct layer any subnet of ``space`` (a :class:`~litepose.models.space.SearchSpace`)
    can have, and those of the presets: what the table needs for a search without timing during it."""
    opts = space.gene_options()
    stem_opts, stage_opts, deconv_opts = opts[1], opts[2:6], opts[6:9]
    m = space.max_spec
    layers: set[Layer] = set()
    for s in space.sizes:
        for stem in stem_opts:
            layers.add(("stem", s, stem))
        h = s // 2
        prev_opts = stem_opts
        for st, outs in zip(m.stages, stage_opts):
            for cin in prev_opts:
                for cout in outs:
                    for k in space.kernels:
                        for t in space.expansions:
                            layers.add(("block", cin, cout, t, k, st.stride, h))
            h //= st.stride
            for cout in outs:
                for k in space.kernels:
                    for t in space.expansions:
                        if st.num_blocks > 1:
                            layers.add(("block", cout, cout, t, k, 1, h))
            prev_opts = outs
        chan_opts = [stem_opts, *stage_opts]
        prev = stage_opts[-1]
        for i, f_opts in enumerate(deconv_opts):
            for f in f_opts:
                for cin in prev:
                    layers.add(("deconv", cin, f, h))
                for cin in chan_opts[-i - 2]:
                    layers.add(("deconv", cin, f, h))
                layers.add(("addrelu", f, 2 * h))
                if i > 0:
                    o = 2 * num_joints if i == 1 else num_joints
                    layers.add(("sep", f, o, 2 * h))
                    for c in chan_opts[-i - 3]:
                        layers.add(("sep", c, o, 2 * h))
                    layers.add(("add", o, 2 * h))
            h *= 2
            prev = f_opts
    for spec in PRESETS.values():
        layers.update(layers_of(spec, num_joints))
    return sorted(layers, key=_key)


def cost_of(spec: ArchSpec, cost: str, num_joints: int, table: LatencyTable | None = None) -> float:
    """``spec``'s cost in the base unit of ``cost`` (MACs, params, ms)."""
    if cost == "latency":
        if table is None:
            raise ValueError("the latency cost needs a latency table")
        return table.latency(spec, num_joints)
    p = profile_model(spec, num_joints)
    return float({"macs": p.macs, "paper-macs": p.macs_paper, "params": p.params}[cost])


def all_costs(spec: ArchSpec, num_joints: int, table: LatencyTable | None = None) -> dict[str, float]:
    """Every cost of ``spec`` (latency only with a table)."""
    p = profile_model(spec, num_joints)
    out: dict[str, float] = {"macs": p.macs, "paper_macs": p.macs_paper, "params": p.params}
    if table is not None:
        out["latency_ms"] = table.latency(spec, num_joints)
    return out
