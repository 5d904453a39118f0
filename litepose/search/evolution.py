"""The accuracy predictor and the original's evolutionary search, resumable.

:class:`AccuracyPredictor`: a candidate's predicted AP is the supernet run as that candidate
(the standalone subnet, identical weights) with its BatchNorm statistics re-estimated on
``calib_images`` training images, scored on the first ``val_images`` validation images. The
supernet's own running statistics mix every subnet it trained and belong to none.

:func:`evolve`: the original's evolution (``ofa``-style, as LitePose's search): a random
population within the budget; each generation keeps the best ``parents`` fraction and adds
``population`` children, ``mutation_ratio`` of them by mutation (each gene redrawn with
``mutate_prob``) and the rest by crossover, every child redrawn until it fits the budget.
Every evaluated candidate is kept in ``state.json`` with the population and the random state
at each generation's start: a killed search started again replays the interrupted generation
from its start (evaluations come from the cache) and ends with the same result.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ..data.jsonio import read_json
from ..files import atomic_write
from ..models.space import Genes, SearchSpace
from ..models.spec import PRESETS, ArchSpec, spec_name
from .correction import PredictorCorrection
from .cost import Budget, format_cost

__all__ = [
    "AccuracyPredictor",
    "SearchSettings",
    "SearchResult",
    "SearchStateError",
    "evolve",
    "write_outputs",
    "arch_key",
    "read_state",
    "write_state",
]

STATE_VERSION = 1


def arch_key(spec: ArchSpec) -> str:
    """A short stable name of an architecture (its JSON, compacted)."""
    blocks = "".join(f"{k}" if t == 6 else f"{k}e{t}" for st in spec.stages for t, k in st.blocks)
    kset = set(blocks)
    kern = blocks[0] if len(kset) == 1 else blocks
    return (f"{spec.input_size}-s{spec.stem_channels}-c{'.'.join(str(s.channels) for s in spec.stages)}"
            f"-d{'.'.join(str(d) for d in spec.deconv)}-k{kern}")  # fmt: skip


class AccuracyPredictor:
    """Predicted AP of subnets of ``supernet``: BatchNorm recalibrated, AP on a validation subset.

    ``data``: training images (COCO JSON or SynthPose folder) for the recalibration; ``val_data``:
    the validation set, of which the first ``val_images`` images are scored (all if <= 0);
    ``correction``: a :class:`~litepose.search.correction.PredictorCorrection` applied to that AP
    (calling the predictor returns the corrected value; :meth:`scores` the raw ones).
    """

    def __init__(
        self,
        supernet: Any,
        data: str | Path,
        val_data: str | Path,
        *,
        images: str | Path | None = None,
        calib_images: int = 32,
        val_images: int = 40,
        batch_size: int = 16,
        device: str | torch.device = "cpu",
        seed: int = 0,
        correction: PredictorCorrection | None = None,
    ) -> None:
        from ..data.dataset import KeypointDataset
        from ..data.transforms import TransformConfig
        from ..eval.evaluate import load_eval_data

        self.supernet = supernet
        self.calib_images = int(calib_images)
        self.batch_size = int(batch_size)
        self.device = device
        self.seed = int(seed)
        self.correction = correction
        if self.calib_images < 1:
            raise ValueError(f"calib_images must be at least 1, got {calib_images}")
        self.train = KeypointDataset(data, images, transform=TransformConfig(input_size=supernet.max_spec.input_size))
        if len(self.train) == 0:
            raise ValueError(f"{data}: no training images to recalibrate BatchNorm with")
        ann = load_eval_data(val_data)
        if ann.num_joints != supernet.num_joints:
            raise ValueError(f"{val_data}: has {ann.num_joints} joints, the supernet {supernet.num_joints}")
        n = len(ann.image_ids) if val_images <= 0 else min(int(val_images), len(ann.image_ids))
        if n == 0:
            raise ValueError(f"{val_data}: no validation images")
        self.val = ann.subset(ann.image_ids[:n])

    def __call__(self, spec: ArchSpec) -> float:
        ap = self.scores(spec)[len(self.val.image_ids)]
        return ap if self.correction is None else self.correction(spec.input_size, ap)

    def scores(self, spec: ArchSpec, prefixes: Sequence[int] = ()) -> dict[int, float]:
        """Predicted AP on the whole validation subset and on each of its first ``prefixes`` images
        (one run of the subnet: what a smaller ``val_images`` would have predicted, measured together)."""
        from ..engine.transfer import calibration_batches, recalibrated_subnet
        from ..eval import evaluate
        from ..eval.evaluate import run_predictor
        from ..predictor import Predictor

        batches = calibration_batches(self.train, None, spec.input_size, self.calib_images, self.batch_size, self.seed)
        net, _ = recalibrated_subnet(self.supernet, spec, batches, self.device)
        net.keypoints = self.supernet.keypoints
        pred = Predictor(net, input_size=spec.input_size, flip_test=False, device=str(self.device))
        results = run_predictor(pred, self.val, progress=False)
        ids = self.val.image_ids
        out = {}
        for n in sorted({len(ids), *(min(int(k), len(ids)) for k in prefixes if int(k) > 0)}):
            keep = set(ids[:n])
            some = self.val if n == len(ids) else self.val.subset(ids[:n])
            out[n] = float(evaluate([r for r in results if r["image_id"] in keep], some, progress=False)["AP"])
        return out


@dataclass(frozen=True)
class SearchSettings:
    population: int = 10
    generations: int = 4
    parents: float = 0.25
    mutate_prob: float = 0.1
    mutation_ratio: float = 0.5
    seed: int = 0
    max_tries: int = 500  # draws per child before giving up (the budget may be too small for the space)

    def check(self) -> None:
        if self.population < 2:
            raise ValueError(f"population must be at least 2, got {self.population}")
        if self.generations < 0:
            raise ValueError(f"generations must be >= 0, got {self.generations}")
        for name in ("parents", "mutate_prob", "mutation_ratio"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {v}")


@dataclass
class SearchResult:
    best: ArchSpec
    best_ap: float
    best_cost: float
    budget: Budget
    candidates: list[dict[str, Any]]
    history: list[dict[str, Any]]
    resumed: bool = False
    evaluated_now: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class SearchStateError(ValueError):
    """The output folder holds the state of a search with other settings (it is never mixed in)."""


#: The search's state in its output folder: every evaluated candidate, the population and random
#: state at each generation's start, and the presets' predicted APs.
STATE_FILE = "state.json"


def read_state(output: str | Path) -> dict[str, Any]:
    """The search state in ``output`` (a clear ``ValueError`` for one that cannot be read)."""
    path = Path(output) / STATE_FILE
    try:
        state = read_json(path, "search state")
    except OSError as e:
        raise ValueError(f"{path}: cannot read the search state: {e}") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a search state (a JSON object), got {type(state).__name__}")
    return state


def write_state(output: str | Path, state: dict[str, Any]) -> None:
    """Write the search state into ``output``, atomically: the one writer of ``state.json``."""
    text = json.dumps(state)
    atomic_write(Path(output) / STATE_FILE, lambda tmp: tmp.write_text(text))


def _rng_to_json(state: tuple) -> list:
    return [state[0], list(state[1]), state[2]]


def _rng_from_json(data: list) -> tuple:
    return (data[0], tuple(data[1]), data[2])


def _open_state(out: Path, ident: dict[str, Any], resume: bool) -> tuple[dict[str, Any], bool]:
    """The search state of ``out`` to go on from (and whether it was resumed), or a fresh one; a
    state written for another ``ident`` is refused rather than mixed in."""
    state: dict[str, Any] = {"version": STATE_VERSION, "identity": ident, "evaluated": {}, "history": []}
    state_path = out / STATE_FILE
    if state_path.is_file() and resume:
        old = read_state(out)
        if old.get("version") != STATE_VERSION or old.get("identity") != ident:
            diff = sorted(k for k in set(ident) | set(old.get("identity", {}))
                          if ident.get(k) != old.get("identity", {}).get(k))  # fmt: skip
            raise SearchStateError(
                f"{state_path}: a search with other settings ({', '.join(diff) or 'version'}) is in this folder; "
                "choose another output folder, or start over (resume=False)"
            )
        return old, True
    if state_path.is_file():
        state_path.unlink()
    return state, False


class _Candidates:
    """The candidates of one search: each architecture's predicted AP and cost, evaluated once
    and saved to the state at once (so a stopped search loses at most the one in progress)."""

    def __init__(self, space: SearchSpace, budget: Budget, predict: Callable[[ArchSpec], float],
                 cost: Callable[[ArchSpec], float], state: dict[str, Any], out: Path, bar: Any) -> None:  # fmt: skip
        self.space, self.budget, self.predict, self.cost = space, budget, predict, cost
        self.state, self.out, self.bar = state, out, bar
        self.evaluated: dict[str, dict[str, Any]] = state["evaluated"]
        self.new = 0

    def save(self) -> None:
        write_state(self.out, self.state)

    def evaluate(self, genes: Genes, generation: int) -> dict[str, Any]:
        spec = self.space.decode(genes)
        key = arch_key(spec)
        row = self.evaluated.get(key)
        if row is None:
            ap = float(self.predict(spec))
            row = {"genes": list(genes), "ap": ap, "cost": float(self.cost(spec)), "generation": generation}
            self.evaluated[key] = row
            self.new += 1
            self.save()
        self.bar.update(1)
        return row

    def draw(self, make: Callable[[], Genes], tries: int) -> Genes:
        """The first of ``tries`` draws of ``make`` that fits the budget."""
        for _ in range(tries):
            g = make()
            if self.budget.allows(float(self.cost(self.space.decode(g)))):
                return g
        smallest = format_cost(self.cost(self.space.extreme(largest=False)), self.budget.cost)
        raise ValueError(
            f"no architecture of the search space within the budget {self.budget.text} after {tries} draws: "
            f"the smallest costs {smallest}"
        )

    def best(self, population: list[Genes]) -> dict[str, Any]:
        return self.evaluated[arch_key(self.space.decode(self.fittest(population)))]

    def fittest(self, population: list[Genes]) -> Genes:
        return min(population, key=lambda g: _rank(g, self.evaluated, self.space))

    def end_generation(self, gen: int, population: list[Genes], rng: random.Random) -> None:
        self.state.update(next_generation=gen + 1, population=[list(g) for g in population],
                          rng=_rng_to_json(rng.getstate()))  # fmt: skip
        summary = _gen_summary(gen, population, self.evaluated, self.space)
        self.state["history"] = self.state["history"][:gen] + [summary]
        self.save()


def evolve(
    space: SearchSpace,
    budget: Budget,
    predict: Callable[[ArchSpec], float],
    cost: Callable[[ArchSpec], float],
    settings: SearchSettings,
    output: str | Path,
    *,
    identity: dict[str, Any] | None = None,
    resume: bool = True,
    progress: bool = True,
    log: Callable[[str], None] = lambda s: None,
) -> SearchResult:
    """Search ``space`` for the architecture of highest ``predict`` within ``budget`` of ``cost``.

    ``identity`` (the supernet, data, predictor settings...) is stored in ``state.json`` with the
    space, budget and settings; a state written for anything else is refused rather than mixed in.
    """
    from tqdm import tqdm

    settings.check()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    ident = {"space": space.as_dict(), "budget": [budget.value, budget.cost], "settings": settings.__dict__,
             **(identity or {})}  # fmt: skip
    state, resumed = _open_state(out, json.loads(json.dumps(ident)), resume)
    p = settings.population
    n_parents = max(1, round(settings.parents * p))
    n_mutate = round(settings.mutation_ratio * p)
    start_gen = int(state.get("next_generation", 0))
    bar = tqdm(total=p * (settings.generations + 1), initial=p * start_gen, desc="search", unit="cand",
               disable=not progress)  # fmt: skip
    cands = _Candidates(space, budget, predict, cost, state, out, bar)
    try:
        if start_gen == 0:
            rng = random.Random(settings.seed)
            population = [cands.draw(lambda: space.encode(space.sample(rng)), settings.max_tries) for _ in range(p)]
            for g in population:
                cands.evaluate(g, 0)
            cands.end_generation(0, population, rng)
            start_gen = 1
        for gen in range(start_gen, settings.generations + 1):
            rng = random.Random()
            rng.setstate(_rng_from_json(state["rng"]))
            ranked = sorted((tuple(g) for g in state["population"]), key=lambda g: _rank(g, cands.evaluated, space))
            parents = _dedupe(ranked)[:n_parents]
            mutant, cross = (
                partial(_mutant, space, parents, rng, settings.mutate_prob),
                partial(_cross, space, parents, rng),
            )
            children = [cands.draw(mutant, settings.max_tries) for _ in range(n_mutate)]
            children += [cands.draw(cross, settings.max_tries) for _ in range(p - n_mutate)]
            for g in children:
                cands.evaluate(g, gen)
            population = parents + children
            cands.end_generation(gen, population, rng)
            best = cands.best(population)
            bar.set_postfix(best_ap=f"{best['ap']:.3f}")
            log(f"generation {gen}/{settings.generations}: best predicted AP {best['ap']:.4f}")
    finally:
        bar.close()
    best = space.decode(cands.fittest([tuple(g) for g in state["population"]]))
    row = cands.evaluated[arch_key(best)]
    rows = [{"key": k, **v} for k, v in cands.evaluated.items()]
    return SearchResult(best, row["ap"], row["cost"], budget, rows, state["history"], resumed, cands.new)


def _mutant(space: SearchSpace, parents: list[Genes], rng: random.Random, prob: float) -> Genes:
    return space.mutate(rng.choice(parents), rng, prob)


def _cross(space: SearchSpace, parents: list[Genes], rng: random.Random) -> Genes:
    return space.crossover(rng.choice(parents), rng.choice(parents), rng)


def _rank(genes: Genes, evaluated: dict[str, dict[str, Any]], space: SearchSpace) -> tuple:
    """Sort key: higher predicted AP first, then lower cost, then the name (a total, stable order)."""
    key = arch_key(space.decode(genes))
    row = evaluated[key]
    return (-row["ap"], row["cost"], key)


def _dedupe(genes: list[Genes]) -> list[Genes]:
    out: list[Genes] = []
    for g in genes:
        if g not in out:
            out.append(g)
    return out


def _gen_summary(gen: int, population: list[Genes], evaluated: dict, space: SearchSpace) -> dict[str, Any]:
    rows = [evaluated[arch_key(space.decode(g))] for g in population]
    best = max(rows, key=lambda r: r["ap"])
    return {"generation": gen, "best_ap": best["ap"], "best_cost": best["cost"], "evaluated": len(evaluated)}


# -- outputs -----------------------------------------------------------------------------------------


def write_outputs(
    result: SearchResult,
    space: SearchSpace,
    output: str | Path,
    num_joints: int,
    presets: dict[str, dict[str, Any]],
    table: Any = None,
) -> dict[str, str]:
    """``best_arch.json``, ``candidates.csv`` and ``pareto.png`` in ``output``; returns their paths.

    ``presets``: name -> {"cost", "ap" (or None)} for the preset marks on the plot.
    """
    from .cost import all_costs

    out = Path(output)
    best_json = json.dumps(result.best.to_json(), indent=1) + "\n"
    atomic_write(out / "best_arch.json", lambda tmp: tmp.write_text(best_json))
    rows = []
    for c in sorted(result.candidates, key=lambda r: (r["generation"], r["key"])):
        spec = space.decode(c["genes"])
        costs = all_costs(spec, num_joints, table)
        rows.append({
            "key": c["key"], "generation": c["generation"], "predicted_ap": round(c["ap"], 5),
            "cost": c["cost"], "within_budget": result.budget.allows(c["cost"]),
            "input_size": spec.input_size, "stem": spec.stem_channels,
            "channels": " ".join(str(s.channels) for s in spec.stages), "deconv": " ".join(str(d) for d in spec.deconv),
            "kernels": " ".join(str(k) for st in spec.stages for _, k in st.blocks),
            "expansions": " ".join(str(t) for st in spec.stages for t, _ in st.blocks),
            "macs": int(costs["macs"]), "paper_macs": int(costs["paper_macs"]), "params": int(costs["params"]),
            "latency_ms": round(costs["latency_ms"], 3) if "latency_ms" in costs else "",
            "arch_json": json.dumps(spec.to_json(), separators=(",", ":")),
        })  # fmt: skip

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)

    atomic_write(out / "candidates.csv", write_csv)
    _plot(result, presets, out / "pareto.png")
    return {name: str(out / name) for name in ("best_arch.json", "candidates.csv", "pareto.png", STATE_FILE)}


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (cost, AP) points no other point beats on both (lower cost, higher AP), by cost."""
    front: list[tuple[float, float]] = []
    for c, a in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or a > front[-1][1]:
            front.append((c, a))
    return front


def _plot(result: SearchResult, presets: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cost = result.budget.cost
    scale, unit = {"macs": (1e9, "GMACs"), "paper-macs": (1e9, "GMACs (paper convention)"),
                   "params": (1e6, "M params"), "latency": (1.0, "ms")}[cost]  # fmt: skip
    pts = [(c["cost"] / scale, c["ap"]) for c in result.candidates]
    fig, ax = plt.subplots(figsize=(8.6, 4.5), dpi=120)
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, c="tab:blue", alpha=0.6, label="candidates")
    front = pareto_front(pts)
    ax.plot([p[0] for p in front], [p[1] for p in front], "-o", c="tab:orange", ms=4, label="Pareto front")
    ax.axvline(result.budget.value / scale, c="tab:red", ls="--", lw=1, label=f"budget {result.budget.text}")
    ax.scatter([result.best_cost / scale], [result.best_ap], marker="*", s=160, c="tab:red", zorder=5,
               label=f"best ({result.best_ap:.3f})")  # fmt: skip
    top = max([p[1] for p in pts] + [0.0])
    xmax = 1.25 * max([result.budget.value / scale] + [p[0] for p in pts])
    beyond = []
    for name, p in presets.items():
        short = name.replace("litepose-", "").upper()
        x = p["cost"] / scale
        if p.get("ap") is not None:
            ax.scatter([x], [p["ap"]], marker="D", s=40, c="tab:green", zorder=4)
            ax.annotate(short, (x, p["ap"]), textcoords="offset points", xytext=(5, 4), color="tab:green")
            xmax = max(xmax, 1.1 * x)
        elif x <= xmax:
            ax.axvline(x, c="tab:green", ls=":", lw=1)
            ax.annotate(short, (x, top), textcoords="offset points", xytext=(3, -12), color="tab:green")
        else:
            beyond.append(f"{short} {x:.3g}")
    ax.set_xlim(0, xmax)
    if beyond:  # presets far above the budget: named at the edge rather than squeezing the plot
        ax.annotate(  # under the legend, outside the axes: never over a point
            "presets beyond:\n" + "\n".join(f"{b} {unit}" for b in beyond),
            (1.02, 0.55),
            xycoords="axes fraction",
            ha="left",
            va="top",
            color="tab:green",
            fontsize=8,
        )
    ax.set_xlabel(f"cost ({unit})")
    corrected = result.extra.get("corrected", False)
    ax.set_ylabel("predicted AP, corrected per input size" if corrected else "predicted AP (supernet, BN recalibrated)")
    ax.set_title("litepose search: predicted AP against cost")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never over a preset's mark
    fig.tight_layout()

    def save(tmp: Path) -> None:
        fig.savefig(tmp, format="png")

    try:
        atomic_write(path, save)
    finally:
        plt.close(fig)


def preset_marks(
    space: SearchSpace,
    cost: Callable[[ArchSpec], float],
    predict: Callable[[ArchSpec], float] | None,
    budget: Budget,
    cache: dict[str, dict[str, Any]] | None = None,
    *,
    output: str | Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Cost of every preset, and its predicted AP where it lies in the space within 1.5x the budget.

    ``cache``: key -> {"ap", "cost"} of presets already scored (filled in). With ``output`` (a search's
    folder, after :func:`evolve`) the cache is that search state's ``presets``, written back: a
    resumed search does not score them again.
    """
    if output is not None:
        state = read_state(output)
        marks = preset_marks(space, cost, predict, budget, state.setdefault("presets", {}))
        write_state(output, state)
        return marks
    marks = {}
    for name, spec in PRESETS.items():
        c = float(cost(spec))
        ap = None
        if predict is not None and space.contains(spec) and c <= 1.5 * budget.value:
            key = arch_key(spec)
            if cache is not None and key in cache:
                ap = cache[key]["ap"]
            else:
                ap = float(predict(spec))
                if cache is not None:
                    cache[key] = {"ap": ap, "cost": c}
        marks[name] = {"cost": c, "ap": ap, "name": spec_name(spec)}
    return marks
